package store

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestPoisonedBucketIsolated: one (partition, bucket) whose totals record
// is damaged (a key of the wrong type) fails to flush every time. Every
// other partition of that bucket, and the next bucket, are delivered at
// the first round; the bad one is retried with its own backoff and, after
// MaxFlushFailures failures, abandoned, counted and logged once.
func TestPoisonedBucketIsolated(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	start := time.Now().Truncate(res).Add(-time.Hour)
	c := &clock{t: start.Add(time.Second)}
	r := &recorder{}
	logs := &syncBuf{}
	a, err := Open(Config{URL: srv.URL, Partitions: 4, Resolution: res, Grace: 2 * time.Second, ID: "a",
		Outlets: []string{"librato"}, Deliver: r.deliver("librato"), Now: c.now, LeaseTTL: 5 * time.Second, LeaseSettle: -1,
		OpTimeout: 300 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// One source per partition.
	src := map[int]string{}
	for i := 0; len(src) < 4; i++ {
		s := fmt.Sprintf("web.%d", i)
		if p := partition("", "req", s, 4); src[p] == "" {
			src[p] = s
		}
	}
	for _, b := range []time.Time{start, start.Add(res)} {
		vals := map[[2]string][]float64{}
		for _, s := range src {
			vals[[2]string{"req", s}] = []float64{1}
		}
		if err := a.Handover(ctx, takeFrom(t, b, metric.Counter, vals)); err != nil {
			t.Fatal(err)
		}
	}
	bad := partition("", "req", src[0], 4) // partition 0: flushed first
	do(t, srv, "HSET", fmt.Sprintf("dm:{p%d}:tot:%d", bad, start.Unix()), "damaged", "1")

	c.set(start.Add(2*res + 3*time.Second)) // both buckets due
	a.Tick(ctx)
	delivered := map[string]bool{}
	for _, b := range r.buckets("librato") {
		for _, s := range b.Series {
			delivered[fmt.Sprintf("%d/%s", b.Start.Unix(), s.Source)] = true
		}
	}
	for p, s := range src {
		for _, b := range []time.Time{start, start.Add(res)} {
			k := fmt.Sprintf("%d/%s", b.Unix(), s)
			if want := p != bad || !b.Equal(start); delivered[k] != want {
				t.Errorf("after one round, %s delivered: %v, want %v", k, delivered[k], want)
			}
		}
	}
	// Retries with its own backoff until abandoned.
	for i := 0; i < 3*MaxFlushFailures && a.Stats().BucketsAbandoned == 0; i++ {
		c.set(c.now().Add(maxRetry))
		a.Tick(ctx)
	}
	st := a.Stats()
	if st.BucketsAbandoned != 1 || st.FlushErrors != MaxFlushFailures || st.Errors[ReasonWrongType] != MaxFlushFailures {
		t.Errorf("BucketsAbandoned %d FlushErrors %d wrongtype %d; want 1 and %d each", st.BucketsAbandoned, st.FlushErrors,
			st.Errors[ReasonWrongType], MaxFlushFailures)
	}
	c.set(c.now().Add(maxRetry))
	a.Tick(ctx)
	if n := strings.Count(logs.String(), "abandoned"); n != 1 {
		t.Errorf("abandonment logged %d times, want once:\n%s", n, logs.String())
	}
	if n := len(r.buckets("librato")); n != 7 {
		t.Errorf("%d partition-buckets delivered, want the 7 healthy ones", n)
	}
}

// TestLateIntoEmptyPartition: once a bucket was delivered, a partial for it
// in a partition that had no data in it is late too: refused, counted, and
// never sent as a new bucket.
func TestLateIntoEmptyPartition(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	start := time.Now().Truncate(res).Add(-time.Hour)
	c := &clock{t: start.Add(time.Second)}
	r := &recorder{}
	a := open(t, srv, "a", c, r, "librato")
	var other string
	for i := 0; other == ""; i++ {
		if s := fmt.Sprintf("run.%d", i); partition("", "req", s, 4) != partition("", "req", "web.1", 4) {
			other = s
		}
	}
	if err := a.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{{"req", "web.1"}: {1}})); err != nil {
		t.Fatal(err)
	}
	c.set(start.Add(res + 3*time.Second))
	a.Tick(ctx)
	if n := len(r.buckets("librato")); n != 1 {
		t.Fatalf("%d buckets delivered, want 1", n)
	}
	if err := a.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{{"req", other}: {5, 6}})); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.LateStates != 1 || st.LateMeasurements != 2 {
		t.Errorf("LateStates %d LateMeasurements %d, want 1 2", st.LateStates, st.LateMeasurements)
	}
	c.set(start.Add(2*res + 3*time.Second))
	a.Tick(ctx)
	a.Tick(ctx)
	for _, b := range r.buckets("librato") {
		if s := find(b, "req", other); s != nil {
			t.Errorf("a late %s was delivered in bucket %v: %+v", other, b.Start, s)
		}
	}
}

// TestDataLossRepaired: Redis loses its data mid-bucket (FLUSHALL, or a
// restart without persistence) after two workers handed over their
// partials; each finds the marker changed at its next hand-over and writes
// its open partials again, so the bucket is delivered whole, once: what was
// handed over before the loss counts exactly once.
func TestDataLossRepaired(t *testing.T) {
	for name, lose := range map[string]func(srv *redistest.Server) error{
		"FLUSHALL": func(srv *redistest.Server) error { _, err := srv.Do("FLUSHALL"); return err },
		"restart":  func(srv *redistest.Server) error { return srv.Restart() },
	} {
		t.Run(name, func(t *testing.T) {
			srv := redistest.Start(t)
			ctx := context.Background()
			start := time.Now().Truncate(res).Add(-time.Hour)
			c := &clock{t: start.Add(time.Second)}
			r := &recorder{}
			a := open(t, srv, "a", c, r, "librato")
			b := open(t, srv, "b", c, r, "librato")
			want := map[string]float64{}
			for i := range 40 {
				k := [2]string{"req", fmt.Sprintf("web.%d", i)}
				want[k[1]] = 3
				if err := a.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{k: {1}})); err != nil {
					t.Fatal(err)
				}
				if err := b.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{k: {2}})); err != nil {
					t.Fatal(err)
				}
			}
			a.Tick(ctx) // a leads; nothing due yet
			if err := lose(srv); err != nil {
				t.Fatal(err)
			}
			// Only one series changes after the loss, on b.
			want["web.0"] += 10
			// After a restart the first attempt may fail on a dead connection:
			// the partials are kept and written at the next one.
			_ = a.Handover(ctx, nil)
			_ = b.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{{"req", "web.0"}: {10}}))
			if err := a.Handover(ctx, nil); err != nil {
				t.Fatal(err)
			}
			if err := b.Handover(ctx, nil); err != nil {
				t.Fatal(err)
			}
			c.set(start.Add(res + 3*time.Second))
			a.Tick(ctx)
			a.Tick(ctx)
			b.Tick(ctx)
			got := map[string]float64{}
			for _, bk := range r.buckets("librato") {
				for _, s := range bk.Series {
					if _, dup := got[s.Source]; dup {
						t.Errorf("%s delivered twice", s.Source)
					}
					got[s.Source] = s.Sum
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("delivered %v\nwant      %v", got, want)
			}
			if sa, sb := a.Stats(), b.Stats(); sa.DataLosses != 1 || sb.DataLosses != 1 || sa.RepairedSeries+sb.RepairedSeries != 80 {
				t.Errorf("DataLosses a %d b %d, RepairedSeries %d; want 1, 1, 80", sa.DataLosses, sb.DataLosses, sa.RepairedSeries+sb.RepairedSeries)
			}
		})
	}
}

// TestDataLossAfterDeadlineCounted: a loss found only after a bucket's
// deadline does not rewrite that bucket's partials (it may have been
// delivered before the loss: a rewrite could send it twice); its series
// are counted as possibly lost, and the open bucket is rewritten.
func TestDataLossAfterDeadlineCounted(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	start := time.Now().Truncate(res).Add(-time.Hour)
	c := &clock{t: start.Add(time.Second)}
	a := open(t, srv, "a", c, &recorder{}, "librato")
	vals := map[[2]string][]float64{{"req", "web.1"}: {1}, {"req", "web.2"}: {1}}
	if err := a.Handover(ctx, takeFrom(t, start, metric.Counter, vals)); err != nil {
		t.Fatal(err)
	}
	do(t, srv, "FLUSHALL")
	next := start.Add(res)
	c.set(next.Add(3 * time.Second)) // start's deadline passed, next is open
	if err := a.Handover(ctx, takeFrom(t, next, metric.Counter, map[[2]string][]float64{{"req", "web.1"}: {1}})); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.DataLosses != 1 || st.DataLossSeries != 2 || st.RepairedSeries != 1 {
		t.Errorf("DataLosses %d DataLossSeries %d RepairedSeries %d; want 1 2 1", st.DataLosses, st.DataLossSeries, st.RepairedSeries)
	}
}

// TestNoFlushWhileAWorkerOwes: Redis refuses a's hand-over for lack of
// memory, then has memory again (another bucket's clean-up freed some)
// before a retries. b, the flusher, must not close the bucket while a, alive,
// holds its partial unwritten: it waits, and once a's retry lands the
// bucket is delivered whole. Before, b flushed it without a's partial,
// which was then refused and counted late.
func TestNoFlushWhileAWorkerOwes(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	start := time.Now().Truncate(res).Add(-time.Hour)
	c := &clock{t: start.Add(time.Second)}
	r := &recorder{}
	b := open(t, srv, "b", c, r, "librato")
	a := open(t, srv, "a", c, &recorder{}, "librato")
	b.Tick(ctx) // b leads
	if err := b.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{{"req", "web.b"}: {1}})); err != nil {
		t.Fatal(err)
	}
	if err := a.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{{"req", "web.a"}: {1}})); err != nil {
		t.Fatal(err)
	}
	do(t, srv, "CONFIG", "SET", "maxmemory-policy", "noeviction")
	do(t, srv, "CONFIG", "SET", "maxmemory", "1")
	if err := a.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{{"req", "web.a"}: {10}})); err == nil {
		t.Fatal("hand-over under OOM: no error")
	}
	do(t, srv, "CONFIG", "SET", "maxmemory", "0")
	c.set(start.Add(res + 3*time.Second))
	b.Tick(ctx) // a owes: nothing closed
	if n := len(r.buckets("librato")); n != 0 {
		t.Errorf("b flushed %d partition-buckets while a held a refused partial", n)
	}
	if err := a.Handover(ctx, nil); err != nil {
		t.Fatal(err)
	}
	b.Tick(ctx)
	got := map[string]float64{}
	for _, bk := range r.buckets("librato") {
		for _, s := range bk.Series {
			got[s.Source] += s.Sum
		}
	}
	if fmt.Sprint(got) != "map[web.a:11 web.b:1]" {
		t.Errorf("delivered %v, want web.a 11 (whole), web.b 1", got)
	}
	if st := a.Stats(); st.LateStates != 0 {
		t.Errorf("a counted %d states late", st.LateStates)
	}
}
