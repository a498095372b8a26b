package promwrite

import (
	"strings"
	"testing"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// TestEncodeApps: in multi-app mode two apps' series with the same name and
// dyno are two series, told apart by an app label; {app} leaves the name;
// each app's counter runs on its own.
func TestEncodeApps(t *testing.T) {
	e := newEncoder("us-east.prod.{app}", map[string]string{"region": "us-east"}, 100)
	steps := []struct {
		b    *aggregate.Bucket
		want []string
	}{
		{bucket(t0,
			aggregate.Series{App: "billing", Name: "hits", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 5},
			aggregate.Series{App: "billing", Name: "load", Source: "web.1", Kind: metric.Sample, Count: 1, Last: 1.5},
			aggregate.Series{App: "shop", Name: "hits", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 7},
			aggregate.Series{App: "shop", Name: "load", Source: "web.1", Kind: metric.Sample, Count: 1, Last: 0.25},
		), []string{
			`us_east_prod_hits_total{app="billing",region="us-east",source="web.1"} 5 @1714564860000`,
			`us_east_prod_hits_total{app="shop",region="us-east",source="web.1"} 7 @1714564860000`,
			`us_east_prod_load{app="billing",region="us-east",source="web.1"} 1.5 @1714564860000`,
			`us_east_prod_load{app="shop",region="us-east",source="web.1"} 0.25 @1714564860000`,
		}},
		{bucket(t0.Add(60e9),
			aggregate.Series{App: "shop", Name: "hits", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 1},
		), []string{
			`us_east_prod_hits_total{app="shop",region="us-east",source="web.1"} 8 @1714564920000`,
		}},
	}
	for i, st := range steps {
		got := encodeAll(t, e, st.b, 100)
		if len(got) != 1 || strings.Join(got[0], "\n") != strings.Join(st.want, "\n") {
			t.Fatalf("step %d: got\n%s\nwant\n%s", i, strings.Join(flatten(got), "\n"), strings.Join(st.want, "\n"))
		}
	}
	if e.collisions != 0 {
		t.Errorf("%d collisions", e.collisions)
	}
}
