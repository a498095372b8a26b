package librato

import (
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// TestEncodeApps: in multi-app mode two apps' series with the same name and
// dyno get their own names ({app} in the prefix, or the app appended) and,
// on the tagged API, an app tag.
func TestEncodeApps(t *testing.T) {
	b := &aggregate.Bucket{Start: start, Period: time.Minute, Series: []aggregate.Series{
		{App: "billing", Name: "load", Source: "web.1", Kind: metric.Sample, Count: 1, Last: 1},
		{App: "shop", Name: "load", Source: "web.1", Kind: metric.Sample, Count: 1, Last: 2},
		{App: "shop", Name: "req", Kind: metric.Counter, Count: 1, Sum: 3},
	}}
	tests := map[string]struct {
		enc  *encoder
		want string
	}{
		"metrics, placeholder": {newEncoder(false, "us-east.prod.{app}", nil), `3 {"measure_time":1714564800,"gauges":[` +
			`{"name":"us-east.prod.billing.load","source":"web.1","period":60,"value":1},` +
			`{"name":"us-east.prod.shop.load","source":"web.1","period":60,"value":2},` +
			`{"name":"us-east.prod.shop.req","period":60,"value":3}]}`},
		"metrics, appended": {newEncoder(false, "us-east", nil), `3 {"measure_time":1714564800,"gauges":[` +
			`{"name":"us-east.billing.load","source":"web.1","period":60,"value":1},` +
			`{"name":"us-east.shop.load","source":"web.1","period":60,"value":2},` +
			`{"name":"us-east.shop.req","period":60,"value":3}]}`},
		"measurements": {newEncoder(true, "p.{app}", map[string]string{"env": "prod"}), `3 {"time":1714564800,"period":60,"measurements":[` +
			`{"name":"p.billing.load","tags":{"dyno":"web.1","env":"prod","app":"billing"},"value":1},` +
			`{"name":"p.shop.load","tags":{"dyno":"web.1","env":"prod","app":"shop"},"value":2},` +
			`{"name":"p.shop.req","tags":{"env":"prod","app":"shop"},"value":3}]}`},
		"measurements, no tags": {newEncoder(true, "{app}", nil), `3 {"time":1714564800,"period":60,"measurements":[` +
			`{"name":"billing.load","tags":{"dyno":"web.1","app":"billing"},"value":1},` +
			`{"name":"shop.load","tags":{"dyno":"web.1","app":"shop"},"value":2},` +
			`{"name":"shop.req","tags":{"dyno":"` + NoSourceDyno + `","app":"shop"},"value":3}]}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			bodies, _ := collect(tc.enc, b)
			if len(bodies) != 1 || bodies[0] != tc.want {
				t.Fatalf("got\n%q\nwant\n%q", bodies, tc.want)
			}
		})
	}
}
