package otlpout

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/otlpout/otlptest"
)

// TestApps: in multi-app mode each app's series go in a resource of its own
// whose service.name is the app (over OTEL_SERVICE_NAME), {app} leaves the
// metric names, and each app's counter runs on its own; decoded with pdata.
func TestApps(t *testing.T) {
	r := otlptest.New(t, otlptest.Options{})
	o, _ := newOutlet(t, r, Config{
		Protocol: HTTPProtobuf, Temporality: Cumulative, Prefix: "us-east.prod.{app}",
		Resource: map[string]string{"service.name": "metrics", "deployment.environment": "prod"},
	})
	b1 := &aggregate.Bucket{Start: t0, Period: time.Minute, Series: []aggregate.Series{
		{App: "billing", Name: "hits", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 5},
		{App: "billing", Name: "load", Source: "web.1", Kind: metric.Sample, Count: 1, Last: 1.5},
		{App: "shop", Name: "hits", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 7},
		{App: "shop", Name: "load", Source: "web.1", Kind: metric.Sample, Count: 1, Last: 0.25},
	}}
	b2 := &aggregate.Bucket{Start: t0.Add(time.Minute), Period: time.Minute, Series: []aggregate.Series{
		{App: "shop", Name: "hits", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 1},
	}}
	o.Write(b1)
	o.Write(b2)
	closeOutlet(t, o)
	if errs := r.Errors(); len(errs) > 0 {
		t.Fatalf("receiver refused requests: %q", errs)
	}
	var got []string
	for _, p := range r.Points() {
		if p.Resource["deployment.environment"] != "prod" || len(p.Resource) != 2 {
			t.Errorf("resource %v", p.Resource)
		}
		got = append(got, fmt.Sprintf("%s %s %s{source=%s} %v", p.Time.Format("15:04"), p.Resource["service.name"], p.Name, p.Attrs["source"], p.Value))
	}
	slices.Sort(got)
	end1, end2 := t0.Add(time.Minute).Format("15:04"), t0.Add(2*time.Minute).Format("15:04")
	want := []string{
		end1 + " billing us-east.prod.hits{source=web.1} 5",
		end1 + " billing us-east.prod.load{source=web.1} 1.5",
		end1 + " shop us-east.prod.hits{source=web.1} 7",
		end1 + " shop us-east.prod.load{source=web.1} 0.25",
		end2 + " shop us-east.prod.hits{source=web.1} 8",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}
