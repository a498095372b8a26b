package promwrite

import (
	"context"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/outlet"
	"github.com/dynometrics/dynometrics/internal/promtest"
)

// TestPrometheus writes three buckets to a real Prometheus and reads them
// back with PromQL.
func TestPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus")
	}
	prom := promtest.Start(t)
	o, logs := newTestOutlet(t, Config{
		URL:    prom.WriteURL,
		Prefix: "us-east.prod.app",
		Tags:   map[string]string{"app": "shop", "region": "us-east"},
		Queue:  outlet.QueueConfig{Backoff: fastQueue.Backoff}, // real clock: buckets are recent
	})
	// Three consecutive buckets ending at least a minute ago (the TSDB takes
	// samples near now only).
	start := time.Now().UTC().Truncate(time.Minute).Add(-4 * time.Minute)
	ends := []time.Time{start.Add(time.Minute), start.Add(2 * time.Minute), start.Add(3 * time.Minute)}
	router := func(count int64, sum, min, max, med, p95, p99 float64) aggregate.Series {
		return aggregate.Series{Name: "router.service", Source: "web.1", Unit: "ms", Kind: metric.Measure,
			Count: count, Sum: sum, Min: min, Max: max, Median: med, P95: p95, P99: p99}
	}
	buckets := []*aggregate.Bucket{
		bucket(start,
			aggregate.Series{Name: "requests", Source: "web.1", Kind: metric.Counter, Count: 2, Sum: 5},
			aggregate.Series{Name: "requests", Source: "web.2", Kind: metric.Counter, Count: 1, Sum: 1},
			router(4, 100, 10, 40, 20, 40, 40),
			aggregate.Series{Name: "memory_rss", Source: "web.1", Unit: "MB", Kind: metric.Sample, Count: 1, Last: 100},
		),
		bucket(start.Add(time.Minute),
			aggregate.Series{Name: "requests", Source: "web.1", Kind: metric.Counter, Count: 3, Sum: 7},
			router(2, 30, 10, 20, 10, 20, 20),
		),
		bucket(start.Add(2*time.Minute),
			aggregate.Series{Name: "requests", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 3},
			aggregate.Series{Name: "requests", Source: "web.2", Kind: metric.Counter, Count: 1, Sum: 2},
			router(1, 5, 5, 5, 5, 5, 5),
			aggregate.Series{Name: "memory_rss", Source: "web.1", Unit: "MB", Kind: metric.Sample, Count: 1, Last: 150.5},
			aggregate.Series{Name: "load_avg_1m", Kind: metric.Sample, Count: 1, Last: 0.25}, // no source
		),
	}
	for _, b := range buckets {
		o.Write(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := o.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if st := o.Stats(); st.Queue.Sent != 3 || st.Queue.Dropped != 0 {
		t.Fatalf("stats %+v\nlogs:\n%s", st, logs)
	}

	const p = "us_east_prod_app_"
	last := ends[2]
	cases := []struct {
		query string
		at    time.Time
		want  []string // promtest.Sample.String() of each result, sorted
	}{
		{`` + p + `requests_total`, ends[0], []string{
			`{__name__="us_east_prod_app_requests_total", app="shop", region="us-east", source="web.1"} => 5`,
			`{__name__="us_east_prod_app_requests_total", app="shop", region="us-east", source="web.2"} => 1`,
		}},
		{p + `requests_total`, last, []string{
			`{__name__="us_east_prod_app_requests_total", app="shop", region="us-east", source="web.1"} => 15`,
			`{__name__="us_east_prod_app_requests_total", app="shop", region="us-east", source="web.2"} => 3`,
		}},
		// increase() across the three buckets: web.1 went 5 → 12 → 15, so 10
		// between the first and last sample, 120 s apart. The range is 121 s
		// so the first sample is inside it on every Prometheus version
		// (3.x ranges are left-open); increase() then extrapolates to the
		// range start: 10 × 121/120.
		{`increase(` + p + `requests_total{source="web.1"}[121s] @ ` + unix(last) + `)`, last, []string{
			`{app="shop", region="us-east", source="web.1"} => ` + strconv.FormatFloat(math.Round(10*121.0/120*1e9)/1e9, 'f', -1, 64),
		}},
		// Per-minute rate from the last two buckets (web.2 was absent in the
		// middle one: 1 → 3 over two minutes).
		{p + `requests_total - ` + p + `requests_total offset 2m`, last, []string{
			`{app="shop", region="us-east", source="web.1"} => 10`,
			`{app="shop", region="us-east", source="web.2"} => 2`,
		}},
		{`sum by (app) (` + p + `requests_total)`, last, []string{`{app="shop"} => 18`}},
		{p + `router_service_seconds`, ends[0], []string{
			`{__name__="us_east_prod_app_router_service_seconds", app="shop", quantile="0.5", region="us-east", source="web.1"} => 0.02`,
			`{__name__="us_east_prod_app_router_service_seconds", app="shop", quantile="0.95", region="us-east", source="web.1"} => 0.04`,
			`{__name__="us_east_prod_app_router_service_seconds", app="shop", quantile="0.99", region="us-east", source="web.1"} => 0.04`,
		}},
		{p + `router_service_seconds{quantile="0.5"}`, last, []string{
			`{__name__="us_east_prod_app_router_service_seconds", app="shop", quantile="0.5", region="us-east", source="web.1"} => 0.005`,
		}},
		{p + `router_service_seconds_sum`, last, []string{
			`{__name__="us_east_prod_app_router_service_seconds_sum", app="shop", region="us-east", source="web.1"} => 0.135`,
		}},
		{p + `router_service_seconds_count`, last, []string{
			`{__name__="us_east_prod_app_router_service_seconds_count", app="shop", region="us-east", source="web.1"} => 7`,
		}},
		{p + `router_service_seconds_min`, ends[1], []string{
			`{__name__="us_east_prod_app_router_service_seconds_min", app="shop", region="us-east", source="web.1"} => 0.01`,
		}},
		{p + `router_service_seconds_max`, ends[0], []string{
			`{__name__="us_east_prod_app_router_service_seconds_max", app="shop", region="us-east", source="web.1"} => 0.04`,
		}},
		{p + `memory_rss_bytes`, ends[0], []string{
			`{__name__="us_east_prod_app_memory_rss_bytes", app="shop", region="us-east", source="web.1"} => 104857600`,
		}},
		{p + `memory_rss_bytes`, last, []string{
			`{__name__="us_east_prod_app_memory_rss_bytes", app="shop", region="us-east", source="web.1"} => 157810688`,
		}},
		{p + `load_avg_1m`, last, []string{
			`{__name__="us_east_prod_app_load_avg_1m", app="shop", region="us-east"} => 0.25`,
		}},
	}
	for _, tc := range cases {
		got := prom.Query(t, tc.query, tc.at)
		var strs []string
		for _, s := range got {
			s.Value = math.Round(s.Value*1e9) / 1e9 // 0.1+0.03+0.005 and friends
			strs = append(strs, s.String())
		}
		if strings.Join(strs, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s at %s:\ngot\n%s\nwant\n%s", tc.query, tc.at.Format(time.TimeOnly),
				strings.Join(strs, "\n"), strings.Join(tc.want, "\n"))
		}
	}
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
