package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
)

// TestFallbackNeverSendsADifferentValue: half a bucket is in Redis when
// Redis goes away; worker a, past REDIS_FALLBACK_AFTER, sends its whole
// view of the bucket itself. When Redis answers again no series that a sent
// is sent from Redis (it would be a second, different value: Librato keeps
// the later one, Prometheus refuses it); series only b had are sent from
// Redis; b's part of a series a sent is counted as dropped.
func TestFallbackNeverSendsADifferentValue(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	start := time.Now().Truncate(res).Add(-time.Hour)
	c := &clock{t: start.Add(time.Second)}
	r := &recorder{}
	a := open(t, srv, "a", c, r, "librato")
	b := open(t, srv, "b", c, r, "librato")
	x, onlyA, onlyB := [2]string{"req", "web.x"}, [2]string{"req", "web.a"}, [2]string{"req", "web.b"}
	if err := a.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{x: {1}, onlyA: {1}})); err != nil {
		t.Fatal(err)
	}
	if err := b.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{x: {2}, onlyB: {5}})); err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := a.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{x: {10}, onlyA: {10}})); err == nil {
		t.Fatal("hand-over with Redis paused: no error")
	}
	sent := map[string][]float64{} // every value sent, by source
	for _, sb := range a.TakeUnsent(start) {
		for _, st := range sb.States {
			sent[st.Source] = append(sent[st.Source], st.Series().Sum)
		}
	}
	if fmt.Sprint(sent) != "map[web.a:[11] web.x:[11]]" {
		t.Fatalf("fallback sent %v, want a's whole view: web.a 11, web.x 11", sent)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := a.Handover(ctx, nil); err != nil {
		t.Fatal(err)
	}
	c.set(start.Add(res + 3*time.Second))
	a.Tick(ctx)
	b.Tick(ctx)
	a.Tick(ctx)
	for _, bk := range r.buckets("librato") {
		for _, s := range bk.Series {
			sent[s.Source] = append(sent[s.Source], s.Sum)
		}
	}
	for src, vals := range sent {
		if len(vals) != 1 {
			t.Errorf("%s sent %d times: %v", src, len(vals), vals)
		}
	}
	if _, ok := sent["web.b"]; !ok {
		t.Error("web.b (only b had it) was not sent from Redis")
	}
	if st := a.Stats(); st.FallbackExcluded+b.Stats().FallbackExcluded != 1 {
		t.Errorf("FallbackExcluded %d, want 1 (b's part of web.x)", st.FallbackExcluded+b.Stats().FallbackExcluded)
	}
}
