package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
)

// leaseToken reads the token of partition p's lease from Redis.
func leaseToken(t *testing.T, srv *redistest.Server, p int) int64 {
	t.Helper()
	v, err := srv.Do("GET", fmt.Sprintf("dm:{p%d}:lease", p))
	if err != nil {
		t.Fatal(err)
	}
	tok, _, _ := strings.Cut(v, " ")
	n, err := strconv.ParseInt(tok, 10, 64)
	if err != nil {
		t.Fatalf("lease %q: %v", v, err)
	}
	return n
}

// TestStaleHolderIsFenced: worker a flushes a bucket and its outlet holds
// it in flight; a then stops renewing (frozen) past its lease. Its bucket
// says it may no longer be sent (Bucket.Valid), b takes the partition over
// with a larger token and delivers the bucket, counted as a resend of an
// unknown outcome, with identical values. When a comes back, every
// flush-side write it tries (the verdict, the clean-up) is refused and
// counted; it flushes nothing more and b's records stand.
func TestStaleHolderIsFenced(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	start := time.Now().Truncate(res).Add(-time.Hour)
	c := &clock{t: start.Add(time.Second)}
	ra := &recorder{hold: true}
	a := open(t, srv, "a", c, ra, "librato")
	k := [2]string{"req", "web.1"}
	p := partition("", k[0], k[1], 4)
	if err := a.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{k: {1, 2}})); err != nil {
		t.Fatal(err)
	}
	c.set(start.Add(res + 3*time.Second))
	a.Tick(ctx)
	inflight := ra.buckets("librato")
	if len(inflight) != 1 || !inflight[0].Valid() {
		t.Fatalf("a delivered %d buckets (valid: %v)", len(inflight), len(inflight) == 1 && inflight[0].Valid())
	}
	tokA := leaseToken(t, srv, p)

	time.Sleep(1100 * time.Millisecond) // a frozen past its 1 s lease
	if inflight[0].Valid() {
		t.Error("a's in-flight bucket still valid after its lease lapsed")
	}
	rb := &recorder{}
	b := open(t, srv, "b", c, rb, "librato")
	b.Tick(ctx)
	tokB := leaseToken(t, srv, p)
	if tokB <= tokA {
		t.Errorf("b's token %d is not larger than a's %d", tokB, tokA)
	}
	got := rb.buckets("librato")
	if len(got) != 1 || find(got[0], "req", "web.1") == nil || find(got[0], "req", "web.1").Sum != 3 {
		t.Fatalf("b delivered %+v, want req/web.1=3", got)
	}
	if x, y := *find(got[0], "req", "web.1").Totals, *find(inflight[0], "req", "web.1").Totals; x != y {
		t.Errorf("b's totals %+v differ from a's %+v", x, y)
	}
	if st := b.Stats(); st.Resends != 1 || st.BucketsResent != 1 {
		t.Errorf("b: Resends %d BucketsResent %d, want 1 1", st.Resends, st.BucketsResent)
	}

	// a resumes: its outlet answers, a records the verdict and ticks.
	inflight[0].Done("librato", nil)
	a.Tick(ctx)
	if st := a.Stats(); st.Fenced != 1 || st.Leases != 0 || st.BucketsDone != 0 {
		t.Errorf("a after resuming: Fenced %d Leases %d BucketsDone %d, want 1 0 0", st.Fenced, st.Leases, st.BucketsDone)
	}
	if n := len(ra.buckets("librato")); n != 1 {
		t.Errorf("a delivered %d buckets after resuming, want only the first", n)
	}
	if v, _ := srv.Do("EXISTS", fmt.Sprintf("dm:{p%d}:parts:%d", p, start.Unix())); v != "1" {
		t.Error("a's stale verdict cleaned the bucket up under b")
	}
	b.Tick(ctx) // b records its verdict: the bucket is done
	if st := b.Stats(); st.BucketsDone != 1 {
		t.Errorf("b: BucketsDone %d, want 1", st.BucketsDone)
	}
	if v, _ := srv.Do("EXISTS", fmt.Sprintf("dm:{p%d}:parts:%d", p, start.Unix())); v != "0" {
		t.Error("the delivered bucket's partials are still in Redis")
	}

	// A Redis that lost its data never hands an old token out again.
	if _, err := srv.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	a2 := open(t, srv, "a2", c, &recorder{}, "librato")
	a2.Tick(ctx)
	if tok := leaseToken(t, srv, p); tok <= tokB {
		t.Errorf("token after FLUSHALL %d, not above the old %d", tok, tokB)
	}
}

// TestLeaseRenewedDuringLongFlush: a flush whose delivery blocks for twice
// the lease (a long merge, a slow outlet) does not let the lease lapse: Run
// renews it on its own schedule, and another worker takes nothing over.
func TestLeaseRenewedDuringLongFlush(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now().Truncate(res).Add(-time.Hour)
	c := &clock{t: start.Add(res + 3*time.Second)}
	var mu sync.Mutex
	blocked := make(chan struct{})
	var once sync.Once
	a, err := Open(Config{URL: srv.URL, Partitions: 4, Resolution: res, Grace: 2 * time.Second, ID: "a",
		Outlets: []string{"librato"}, Now: c.now, LeaseTTL: time.Second, LeaseSettle: -1, OpTimeout: 300 * time.Millisecond,
		Deliver: func(b *aggregate.Bucket, skip func(string) bool) {
			mu.Lock()
			defer mu.Unlock()
			once.Do(func() { close(blocked) })
			time.Sleep(2500 * time.Millisecond)
			b.Done("librato", nil)
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{{"req", "web.1"}: {1}})); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { a.Run(ctx, time.Hour); close(done) }()
	<-blocked
	time.Sleep(1500 * time.Millisecond) // past the lease TTL since the flush began
	rb := &recorder{}
	b := open(t, srv, "b", c, rb, "librato")
	b.Tick(ctx)
	if st := b.Stats(); st.Leases != 0 {
		t.Errorf("b took %d leases while a was busy flushing", st.Leases)
	}
	if n := len(rb.buckets("librato")); n != 0 {
		t.Errorf("b delivered %d buckets a was delivering", n)
	}
	cancel()
	<-done
}

// TestVerdictRecordedOnArrival: an outlet's verdict reaches Redis as it
// arrives, not at the next flush round: a worker that stalls right after
// its outlet answered leaves nothing for the next holder to resend.
func TestVerdictRecordedOnArrival(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now().Truncate(res).Add(-time.Hour)
	c := &clock{t: start.Add(res + 3*time.Second)}
	r := &recorder{}
	a := open(t, srv, "a", c, r, "librato")
	if err := a.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{{"req", "web.1"}: {1}})); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { a.Run(ctx, time.Hour); close(done) }() // one round, then an hour
	p := partition("", "req", "web.1", 4)
	deadline := time.Now().Add(2 * time.Second)
	for {
		v, _ := srv.Do("EXISTS", fmt.Sprintf("dm:{p%d}:parts:%d", p, start.Unix()))
		if v == "0" && len(r.buckets("librato")) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the delivered bucket was not recorded within 2 s (%d deliveries)", len(r.buckets("librato")))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
}

// TestLeavingPartitionFlushedBeforeRelease: a worker above its share keeps
// flushing the partitions it is leaving until a round handed everything
// due to the outlets; only then does it release them, and the worker that
// takes them from that clean release flushes at once (no LeaseSettle): a
// bucket that comes due during a move is not held back by it.
func TestLeavingPartitionFlushedBeforeRelease(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	start := time.Now().Truncate(res).Add(-time.Hour)
	c := &clock{t: start.Add(time.Second)}
	r := &recorder{}
	settle := time.Minute // on the fake clock: only a clean take skips it
	mk := func(id string) *Store {
		s, err := Open(Config{URL: srv.URL, Partitions: 4, Resolution: res, Grace: 2 * time.Second, ID: id, Balance: true,
			Outlets: []string{"librato"}, Deliver: r.deliver("librato"), Now: c.now, LeaseTTL: 5 * time.Second,
			LeaseSettle: settle, OpTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a := mk("a")
	vals := map[[2]string][]float64{}
	for i := range 40 {
		vals[[2]string{"req", fmt.Sprintf("web.%d", i)}] = []float64{1}
	}
	if err := a.Handover(ctx, takeFrom(t, start, metric.Counter, vals)); err != nil {
		t.Fatal(err)
	}
	a.Tick(ctx) // a alone: takes all 4 (fresh leases: they settle)
	c.set(start.Add(settle + res + 2*time.Second))
	b := mk("b")
	b.Tick(ctx) // b announces itself; nothing free
	a.Tick(ctx) // a sees 2 workers: 2 leaving, yet it flushes the due bucket in all 4
	if st := a.Stats(); st.BucketsFlushed != 4 || st.LeasesReleased != 0 {
		t.Fatalf("a flushed %d (partition, bucket)s and released %d leases, want 4 and 0", st.BucketsFlushed, st.LeasesReleased)
	}
	a.Tick(ctx) // the deliveries settled, nothing else due: released
	if st := a.Stats(); st.LeasesReleased != 2 || st.Leases != 2 {
		t.Fatalf("a released %d leases and holds %d, want 2 and 2", st.LeasesReleased, st.Leases)
	}
	// The next bucket: b takes the released partitions and flushes them
	// in the same round, LeaseSettle (a minute) notwithstanding.
	next := time.Unix(dueCutoff(c.now(), res, 2*time.Second), 0).Add(res)
	if err := a.Handover(ctx, takeFrom(t, next, metric.Counter, vals)); err != nil {
		t.Fatal(err)
	}
	c.set(next.Add(res + 2*time.Second))
	b.Tick(ctx)
	a.Tick(ctx)
	sa, sb := a.Stats(), b.Stats()
	if sb.Leases != 2 || sb.BucketsFlushed != 2 || sa.BucketsFlushed != 4+2 || sa.BucketsResent+sb.BucketsResent != 0 {
		t.Fatalf("b holds %d and flushed %d, a flushed %d; resent %d; want 2, 2, 6, 0", sb.Leases, sb.BucketsFlushed, sa.BucketsFlushed, sa.BucketsResent+sb.BucketsResent)
	}
	n := 0
	for _, bk := range r.buckets("librato") {
		n += len(bk.Series)
	}
	if n != 2*len(vals) {
		t.Fatalf("delivered %d series in two buckets, want %d", n, 2*len(vals))
	}
}
