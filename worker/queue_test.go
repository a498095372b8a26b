package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/librato"
	"github.com/dynometrics/dynometrics/internal/librato/libratotest"
	"github.com/dynometrics/dynometrics/internal/outlet"
)

func TestQueueBound(t *testing.T) {
	for _, tc := range []struct{ series, per, req, floor, want int }{
		{100_000, 4, 300, outlet.DefaultMaxBatches, 3 * 1334},
		{100_000, 7, 2000, outlet.DefaultMaxBatches, 3 * 350},
		{1000, 4, 300, outlet.DefaultMaxBatches, outlet.DefaultMaxBatches},
		{2000, 4, 300, sharedQueueMin, 3 * 27},
		{100, 4, 300, sharedQueueMin, sharedQueueMin},
	} {
		if got := queueBound(tc.series, tc.per, tc.req, tc.floor); got != tc.want {
			t.Errorf("queueBound(%d, %d, %d, %d) = %d, want %d", tc.series, tc.per, tc.req, tc.floor, got, tc.want)
		}
	}
}

// TestBucketAtSeriesLimitDeliveredWhole sends one bucket of
// aggregate.DefaultMaxSeries measure# series (400,000 Librato gauges, 1,334
// requests) through the worker to the strict fake Librato: every gauge
// arrives, nothing is dropped as "queue full" (the default queue of 1,000
// batches dropped 8–12 % of it).
func TestBucketAtSeriesLimitDeliveredWhole(t *testing.T) {
	fake := libratotest.New(t, libratotest.Options{User: testLUser, Token: testLToken})
	start := time.Now().UTC().Truncate(time.Minute).Add(-2 * time.Minute)
	clock := &testClock{t: start.Add(30 * time.Second)}
	url, wk, stop := runWorker(t, testConfig(fake.URL), outlet.QueueConfig{Concurrency: 8}, clock)

	const n = aggregate.DefaultMaxSeries
	const perBody = 2000
	for b := 0; b < n/perBody; b++ {
		var msgs []string
		for i := b * perBody; i < (b+1)*perBody; i++ {
			msgs = append(msgs, fmt.Sprintf("<190>1 %s host app web.%d - measure#m%d=%dms",
				syslogTime(start.Add(time.Second)), i%100, i/100, i))
		}
		postDrain(t, url, fmt.Sprintf("frame-%d", b), frame(msgs...))
	}
	waitFor(t, "every series aggregated", 60*time.Second, func() bool { return wk.agg.Stats().Added == n })
	clock.Set(start.Add(time.Minute + 2*time.Second)) // due: the worker flushes
	lb := wk.outlets[0].Outlet.(*librato.Outlet)
	waitFor(t, "the bucket delivered", 120*time.Second, func() bool {
		q := lb.Stats().Queue
		return q.Sent+q.Dropped >= 1334
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := fake.Measurements()
	want := n * 4
	st := wk.outlets[0].Outlet.(*librato.Outlet).Stats()
	if len(got) != want || st.Queue.Dropped != 0 {
		t.Fatalf("fake Librato accepted %d gauges, want %d; queue stats %+v", len(got), want, st.Queue)
	}
	seen := make(map[string]bool, len(got))
	for _, m := range got {
		k := m.Name + "/" + m.Source
		if seen[k] {
			t.Fatalf("%s received twice", k)
		}
		seen[k] = true
	}
	if !seen[testPrefix+".m999.perc95/web.99"] || !strings.HasPrefix(got[0].Name, testPrefix) {
		t.Fatalf("missing the last series")
	}
}
