package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
)

// TestFlushTimeCounted: the flush time (Stats.FlushTime, published as
// worker.redis.flush_ms) grows only when a due bucket is flushed, by no more
// than the round that flushed it took, and FlushMillis is it in whole
// milliseconds.
func TestFlushTimeCounted(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	start := time.Now().Truncate(res).Add(-time.Hour)
	c := &clock{t: start.Add(time.Second)}
	r := &recorder{}
	s := open(t, srv, "a", c, r, "librato")

	vals := map[[2]string][]float64{}
	for i := range 2000 {
		vals[[2]string{fmt.Sprintf("m%d", i%100), fmt.Sprintf("web.%d", i/100)}] = []float64{1, float64(i)}
	}
	if err := s.Handover(ctx, takeFrom(t, start, metric.Measure, vals)); err != nil {
		t.Fatal(err)
	}
	s.Tick(ctx) // not due: takes the leases, flushes nothing
	if st := s.Stats(); st.FlushTime != 0 || st.FlushMillis != 0 || len(r.buckets("librato")) != 0 {
		t.Fatalf("before the deadline: flush time %v (%d ms), %d buckets", st.FlushTime, st.FlushMillis, len(r.buckets("librato")))
	}
	c.set(start.Add(res + 2*time.Second))
	t0 := time.Now()
	s.Tick(ctx)
	wall := time.Since(t0)
	st := s.Stats()
	series := 0
	for _, b := range r.buckets("librato") {
		series += len(b.Series)
	}
	if series != 2000 {
		t.Fatalf("flushed %d series, want 2000", series)
	}
	if st.FlushTime <= 0 || st.FlushTime > wall {
		t.Errorf("flush time %v, want above 0 and at most the round's %v", st.FlushTime, wall)
	}
	if st.FlushMillis != uint64(st.FlushTime/time.Millisecond) {
		t.Errorf("FlushMillis %d, want %d (FlushTime %v)", st.FlushMillis, st.FlushTime/time.Millisecond, st.FlushTime)
	}
	before := st.FlushTime
	s.Tick(ctx) // nothing more is due
	if got := s.Stats().FlushTime; got != before {
		t.Errorf("a round with nothing due added %v of flush time", got-before)
	}
}
