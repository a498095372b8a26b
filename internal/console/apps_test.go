package console

import (
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// TestAppendBucketApps: in multi-app mode {app} in the prefix names the app
// and every line carries app=.
func TestAppendBucketApps(t *testing.T) {
	b := &aggregate.Bucket{Start: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), Period: time.Minute, Series: []aggregate.Series{
		{App: "billing", Name: "load_avg_5m", Source: "web.1", Kind: metric.Sample, Count: 1, Last: 1.5},
		{App: "shop", Name: "load_avg_5m", Source: "web.1", Kind: metric.Sample, Count: 1, Last: 0.25},
	}}
	for prefix, want := range map[string]string{
		"us-east.prod.{app}": "bucket=2024-05-01T12:00:00Z period=60s app=billing source=web.1 sample#us-east.prod.billing.load_avg_5m=1.5\n" +
			"bucket=2024-05-01T12:00:00Z period=60s app=shop source=web.1 sample#us-east.prod.shop.load_avg_5m=0.25\n",
		"": "bucket=2024-05-01T12:00:00Z period=60s app=billing source=web.1 sample#billing.load_avg_5m=1.5\n" +
			"bucket=2024-05-01T12:00:00Z period=60s app=shop source=web.1 sample#shop.load_avg_5m=0.25\n",
	} {
		if got := string(AppendBucket(nil, b, prefix)); got != want {
			t.Errorf("prefix %q: got\n%s\nwant\n%s", prefix, got, want)
		}
	}
}
