package store

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
)

// TestTotalsPrunedBounded: a steady series and a new one-off source in
// every bucket (run.1, run.2, …, as a day of one-off dynos): with an idle
// age of three buckets the running-totals hashes hold the steady series
// and the last few one-offs, not every name ever seen; the steady series'
// totals go on unbroken.
func TestTotalsPrunedBounded(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	start := time.Now().Truncate(res).Add(-2 * time.Hour)
	c := &clock{t: start}
	r := &recorder{}
	a, err := Open(Config{URL: srv.URL, Partitions: 4, Resolution: res, Grace: 2 * time.Second, ID: "a",
		Outlets: []string{"librato"}, Deliver: r.deliver("librato"), Now: c.now, LeaseTTL: 5 * time.Second,
		LeaseSettle: -1, OpTimeout: time.Second, TotalsTTL: 3 * res})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	const buckets = 60
	for i := range buckets {
		b := start.Add(time.Duration(i) * res)
		c.set(b.Add(time.Second))
		vals := map[[2]string][]float64{{"req", "web.1"}: {1}, {"req", fmt.Sprintf("run.%d", i)}: {1}}
		if err := a.Handover(ctx, takeFrom(t, b, metric.Counter, vals)); err != nil {
			t.Fatal(err)
		}
		c.set(b.Add(res + 3*time.Second))
		a.Tick(ctx)
		a.Tick(ctx)
	}
	var fields int64
	for p := range 4 {
		v, err := srv.Do("HLEN", fmt.Sprintf("dm:{p%d}:totals", p))
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		fields += n
	}
	// The steady series, the one-offs of the last idle age (3 buckets, plus
	// the one being flushed), and those not yet swept in partitions that
	// flushed nothing since (one more each at most).
	if fields > 1+4+4 {
		t.Errorf("%d running-totals fields after %d buckets of one-off sources, want at most 9", fields, buckets)
	}
	if st := a.Stats(); st.TotalsPruned < buckets-9 {
		t.Errorf("TotalsPruned %d, want at least %d", st.TotalsPruned, buckets-9)
	}
	var last float64
	for _, b := range r.buckets("librato") {
		if s := find(b, "req", "web.1"); s != nil && s.Totals != nil {
			last = max(last, s.Totals.Sum)
		}
	}
	if last != buckets {
		t.Errorf("web.1 running total %v after %d buckets, want %d (never pruned while seen)", last, buckets, buckets)
	}
}

// TestFeedTrimsAndDropsCounted: the feed keeps FeedLen entries; each entry
// its cap removes is counted (a viewer that had not read it misses it), and
// a merged bucket that cannot be appended at all is counted as dropped for
// the viewers while the outlets still get it.
func TestFeedTrimsAndDropsCounted(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	start := time.Now().Truncate(res).Add(-2 * time.Hour)
	c := &clock{t: start}
	r := &recorder{}
	a, err := Open(Config{URL: srv.URL, Partitions: 1, Resolution: res, Grace: 2 * time.Second, ID: "a",
		Outlets: []string{"librato"}, Deliver: r.deliver("librato"), Now: c.now, LeaseTTL: 5 * time.Second,
		LeaseSettle: -1, OpTimeout: time.Second, FeedLen: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	flush := func(i int) {
		b := start.Add(time.Duration(i) * res)
		c.set(b.Add(time.Second))
		if err := a.Handover(ctx, takeFrom(t, b, metric.Counter, map[[2]string][]float64{{"req", "web.1"}: {1}})); err != nil {
			t.Fatal(err)
		}
		c.set(b.Add(res + 3*time.Second))
		a.Tick(ctx)
	}
	for i := range 5 {
		flush(i)
	}
	if st := a.Stats(); st.FeedTrimmed != 2 {
		t.Errorf("FeedTrimmed %d after 5 entries in a feed of 3, want 2", st.FeedTrimmed)
	}
	do(t, srv, "DEL", "dm:feed")
	do(t, srv, "SET", "dm:feed", "not a stream")
	flush(5)
	if st := a.Stats(); st.FeedDropped != 1 || st.FeedErrors != 0 {
		t.Errorf("FeedDropped %d FeedErrors %d, want 1 0", st.FeedDropped, st.FeedErrors)
	}
	if n := len(r.buckets("librato")); n != 6 {
		t.Errorf("%d buckets delivered, want 6", n)
	}
}
