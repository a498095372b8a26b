package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/librato"
	"github.com/dynometrics/dynometrics/internal/librato/libratotest"
	"github.com/dynometrics/dynometrics/internal/outlet"
	"github.com/dynometrics/dynometrics/internal/promtest"
	"github.com/dynometrics/dynometrics/internal/promwrite"
)

// TestEndToEndPrometheus sends the recorded drain for two consecutive minutes
// through the HTTP drain to a real Prometheus (remote-write receiver) and to
// the fake Librato at once, then checks with PromQL: counter increase,
// quantiles, summary sum/count, min/max, gauges and labels.
func TestEndToEndPrometheus(t *testing.T) {
	prom := promtest.Start(t)
	fake := libratotest.New(t, libratotest.Options{User: testLUser, Token: testLToken})
	fake.SetCredentials(testLUser, "a-rotated-token") // Librato answers 401 until the token is "fixed"
	cfg := Config{
		Drain:           drain.Env{User: testUser, Password: testPass},
		Metrics:         outlet.Env{Prefix: testPrefix, Tags: "region:us-east,env:prod"},
		Buckets:         aggregate.Env{Resolution: time.Minute, Grace: time.Second},
		RemoteWrite:     promwrite.Env{URL: prom.WriteURL},
		Librato:         librato.Env{User: testLUser, Token: testLToken, URL: fake.URL, API: "metrics"},
		ShutdownTimeout: 20 * time.Second,
	}
	now := time.Now().UTC().Truncate(time.Minute)
	starts := []time.Time{now.Add(-3 * time.Minute), now.Add(-2 * time.Minute)}
	clock := &testClock{t: starts[0].Add(30 * time.Second)}
	url, wk, stop := runWorker(t, cfg, outlet.QueueConfig{MinBackoff: 5 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}, clock)
	for i, s := range starts {
		clock.Set(s.Add(30 * time.Second))
		postDrain(t, url, fmt.Sprintf("minute-%d", i), frame(drainMessages(t, s)...))
		waitFor(t, "the body to be parsed", 5*time.Second, func() bool { return wk.drain.Stats().Processed == uint64(i+1) })
	}
	clock.Set(now)
	// Prometheus gets both minutes while Librato refuses the credentials: one
	// outlet failing does not hold the other back; the refused data is kept.
	pw := wk.outlets[1].Outlet.(*promwrite.Outlet)
	waitFor(t, "remote write of both minutes", 10*time.Second, func() bool { return pw.Stats().Queue.Sent == 2 })
	if n, c := len(fake.Measurements()), fake.Counts(); n != 0 || c.Requests == 0 {
		t.Fatalf("Librato with wrong credentials: %d measurements accepted, %d requests; want 0 and some", n, c.Requests)
	}
	fake.SetCredentials(testLUser, testLToken)
	waitFor(t, "Librato to recover and get both minutes", 10*time.Second, func() bool { return len(fake.Measurements()) == 2*len(drainWants()) })
	if err := stop(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	for _, s := range starts {
		var in []libratotest.Measurement
		for _, m := range fake.Measurements() {
			if m.Time == s.Unix() {
				in = append(in, m)
			}
		}
		checkAccepted(t, in, drainWants(), s)
	}
	if st := pw.Stats(); st.Queue.Sent != 2 || st.Queue.Dropped != 0 || st.Late != 0 {
		t.Errorf("remote write: %d requests sent, %d dropped, %d late series; want 2, 0, 0", st.Queue.Sent, st.Queue.Dropped, st.Late)
	}
	end := starts[1].Add(time.Minute) // samples carry the bucket end
	at := end.Add(time.Second)

	const p = "us_east_prod_app_"
	tests := []struct {
		query string
		want  float64
	}{
		{p + `jobs_enqueued_total{source="web.2"}`, 16},                                                         // 8 per minute, cumulative
		{p + `jobs_enqueued_total{source="web.2"} - ` + p + `jobs_enqueued_total{source="web.2"} offset 1m`, 8}, // the increase over the last minute
		{p + `router_status_2xx_total{source="web.1"}`, 4},
		{p + `logplex_dropped_total`, 30},
		{p + `db_latency_seconds{source="web.2",quantile="0.5"}`, 0.007},
		{p + `db_latency_seconds{source="web.2",quantile="0.95"}`, 0.010},
		{p + `db_latency_seconds{source="web.2",quantile="0.99"}`, 0.010},
		{p + `db_latency_seconds_sum{source="web.2"}`, 0.042},
		{p + `db_latency_seconds_count{source="web.2"}`, 6},
		{p + `db_latency_seconds_min{source="web.2"}`, 0.004},
		{p + `db_latency_seconds_max{source="web.2"}`, 0.010},
		{p + `router_service_seconds{source="web.2",quantile="0.5"}`, 30},
		{p + `load_avg_5m{source="web.1"}`, 1.1},
		{p + `memory_rss_bytes{source="web.2",quantile="0.5"}`, 30.5 * 1024 * 1024}, // the labs measure= form is a measure
		{p + `memory_rss_bytes_count{source="web.2"}`, 2},                           // one value per minute, cumulative
		{p + `db_size_bytes{source="DATABASE"}`, 8945836},
		{p + `queue_depth{source="web.2",region="us-east",env="prod"}`, 9},
	}
	for _, tc := range tests {
		got := prom.Query(t, tc.query, at)
		if len(got) != 1 {
			t.Errorf("%s: %d results %v, want 1", tc.query, len(got), got)
			continue
		}
		if !near(got[0].Value, tc.want) {
			t.Errorf("%s = %v, want %v", tc.query, got[0].Value, tc.want)
		}
	}
	// Labels: the dyno as source, METRICS_TAGS on every series, no hostname.
	got := prom.Query(t, p+`router_status_5xx_total`, at)
	if len(got) != 2 {
		t.Fatalf("router_status_5xx_total: %v, want the series of web.2 and router", got)
	}
	for i, src := range []string{"router", "web.2"} {
		l := got[i].Labels
		if l["source"] != src || l["region"] != "us-east" || l["env"] != "prod" || len(l) != 4 {
			t.Errorf("series %d labels %v, want __name__, env=prod, region=us-east, source=%s", i, l, src)
		}
	}
}
