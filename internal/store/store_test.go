package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/outlet"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
	"github.com/redis/go-redis/v9"
)

// recorder is a fake outlet set: it records every delivered bucket per
// outlet and settles it with the verdict verdict returns.
type recorder struct {
	mu      sync.Mutex
	got     map[string][]*aggregate.Bucket
	verdict func(outlet string) error // nil: accept
	hold    bool                      // never settle (a worker dying mid-send)
}

func (r *recorder) deliver(outlets ...string) func(b *aggregate.Bucket, skip func(string) bool) {
	return func(b *aggregate.Bucket, skip func(string) bool) {
		for _, o := range outlets {
			if skip(o) {
				continue
			}
			r.mu.Lock()
			if r.got == nil {
				r.got = make(map[string][]*aggregate.Bucket)
			}
			r.got[o] = append(r.got[o], b)
			hold, v := r.hold, r.verdict
			r.mu.Unlock()
			if hold {
				continue
			}
			var err error
			if v != nil {
				err = v(o)
			}
			b.Done(o, err)
		}
	}
}

func (r *recorder) buckets(o string) []*aggregate.Bucket {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*aggregate.Bucket(nil), r.got[o]...)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

const res = 10 * time.Second

func open(t *testing.T, srv *redistest.Server, id string, c *clock, r *recorder, outlets ...string) *Store {
	t.Helper()
	s, err := Open(Config{
		URL: srv.URL, Partitions: 4, Resolution: res, Grace: 2 * time.Second, ID: id,
		Outlets: outlets, Deliver: r.deliver(outlets...), Now: c.now, LeaseTTL: time.Second, LeaseSettle: -1,
		OpTimeout: time.Second, // short for the paused-Redis tests, not so short that a busy machine fails the rest
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// takeFrom builds the states one worker saw: values per (name, source).
func takeFrom(t *testing.T, start time.Time, kind metric.Kind, vals map[[2]string][]float64) []*aggregate.StateBucket {
	t.Helper()
	a, err := aggregate.New(aggregate.Config{Resolution: res, Now: func() time.Time { return start }})
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range vals {
		for i, v := range vs {
			a.Add([]metric.Measurement{{Name: k[0], Source: k[1], Kind: kind, Value: v, Time: start.Add(time.Duration(i) * time.Millisecond)}})
		}
	}
	return a.TakeStates()
}

func find(b *aggregate.Bucket, name, source string) *aggregate.Series {
	for i := range b.Series {
		if b.Series[i].Name == name && b.Series[i].Source == source {
			return &b.Series[i]
		}
	}
	return nil
}

func TestHandoverMergeFlushOnce(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	start := time.Now().Truncate(res).Add(-time.Hour)
	c := &clock{t: start.Add(time.Second)}
	r := &recorder{}
	a := open(t, srv, "a", c, r, "librato", "remote_write")
	b := open(t, srv, "b", c, r, "librato", "remote_write")
	a.cfg.Balance, b.cfg.Balance = true, true

	// 50 series, each seen by both workers, in two hand-overs by a.
	want := map[[2]string]float64{}
	for i := range 50 {
		k := [2]string{"req", fmt.Sprintf("web.%d", i)}
		want[k] = float64(3*i + 6)
		if err := a.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{k: {float64(i), 1}})); err != nil {
			t.Fatal(err)
		}
		if err := b.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{k: {float64(2 * i), 5}})); err != nil {
			t.Fatal(err)
		}
	}
	// Not due yet: nothing flushed. a took every partition first; within
	// a few rounds it releases half of them to b (balanced leases: a
	// partition is released once a flush round found nothing due in it
	// that was not handed to the outlets and settled).
	for range 3 {
		a.Tick(ctx)
		b.Tick(ctx)
	}
	if n := len(r.buckets("librato")); n != 0 {
		t.Fatalf("flushed %d buckets before the deadline", n)
	}
	c.set(start.Add(res + 2*time.Second))
	// Each flushes its share.
	for range 2 {
		a.Tick(ctx)
		b.Tick(ctx)
	}
	for _, s := range []*Store{a, b} {
		if st := s.Stats(); st.Leases != 2 || st.LiveWorkers != 2 || st.BucketsFlushed != 2 || st.BucketsDone != 2 {
			t.Errorf("%s: leases %d, live workers %d, flushed %d, done %d; want 2 each (4 partitions, 2 workers)",
				s.cfg.ID, st.Leases, st.LiveWorkers, st.BucketsFlushed, st.BucketsDone)
		}
	}
	if st := a.Stats(); st.LeasesReleased != 2 {
		t.Errorf("a released %d leases, want 2", st.LeasesReleased)
	}
	got := map[[2]string]float64{}
	for _, bk := range r.buckets("librato") {
		if !bk.Start.Equal(start) {
			t.Fatalf("bucket start %v, want %v", bk.Start, start)
		}
		for _, s := range bk.Series {
			k := [2]string{s.Name, s.Source}
			if _, dup := got[k]; dup {
				t.Fatalf("%v delivered twice", k)
			}
			got[k] = s.Sum
			if s.Totals == nil || s.Totals.Sum != s.Sum || s.Totals.Count != 4 || !s.Totals.Start.Equal(start) {
				t.Fatalf("%v: totals %+v, want sum %v count 4 from %v", k, s.Totals, s.Sum, start)
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered %v\nwant      %v", got, want)
	}
	if n := len(r.buckets("remote_write")); n != len(r.buckets("librato")) {
		t.Fatalf("remote_write got %d parts, librato %d", n, len(r.buckets("librato")))
	}
	st := a.Stats()
	stb := b.Stats()
	if st.BucketsDone+stb.BucketsDone != st.BucketsFlushed+stb.BucketsFlushed || st.BucketsResent+stb.BucketsResent != 0 {
		t.Fatalf("stats a %+v\nb %+v", st, stb)
	}
	// Partials deleted, closed marks kept.
	if n, _ := srv.Do("EXISTS", "dm:{p0}:parts:"+fmt.Sprint(start.Unix())); n != "0" {
		t.Fatalf("parts of a delivered bucket still in Redis")
	}

	// A late partial (another worker's straggler) is refused and counted.
	k := [2]string{"req", "web.1"}
	if err := b.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{k: {100, 200}})); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.LateStates != 1 || st.LateMeasurements != 2 {
		t.Fatalf("late: %+v", st)
	}
	// The next bucket, handed over before its deadline, continues the totals.
	next := start.Add(res)
	if err := a.Handover(ctx, takeFrom(t, next, metric.Counter, map[[2]string][]float64{k: {10}})); err != nil {
		t.Fatal(err)
	}
	c.set(start.Add(3 * res))
	a.Tick(ctx)
	b.Tick(ctx)
	for _, bk := range r.buckets("librato") {
		if s := find(bk, "req", "web.1"); s != nil && bk.Start.Equal(start) && s.Sum != want[k] {
			t.Fatalf("a late partial changed a sent value: %v", s.Sum)
		}
	}
	a.Tick(ctx)
	b.Tick(ctx)
	var s *aggregate.Series
	for _, bk := range r.buckets("librato") {
		if bk.Start.Equal(next) {
			s = find(bk, "req", "web.1")
		}
	}
	if s == nil || s.Totals == nil || s.Totals.Sum != want[k]+10 || s.Totals.Count != 5 || !s.Totals.Start.Equal(start) {
		t.Fatalf("next bucket totals: %+v", s)
	}
}

func TestResendAfterDropAndTakeover(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	start := time.Now().Truncate(res).Add(-time.Hour)
	c := &clock{t: start.Add(res + 3*time.Second)}
	r := &recorder{verdict: func(o string) error {
		if o == "remote_write" {
			return fmt.Errorf("remote_write: %w: shutdown", outlet.ErrDropped)
		}
		return nil
	}}
	a := open(t, srv, "a", c, r, "librato", "remote_write")
	vals := map[[2]string][]float64{{"lat", "web.1"}: {5, 1, 9}, {"lat", "web.2"}: {2}}
	if err := a.Handover(ctx, takeFrom(t, start, metric.Measure, vals)); err != nil {
		t.Fatal(err)
	}
	a.Tick(ctx) // flush: librato accepts, remote_write drops
	a.Tick(ctx) // record verdicts
	if n := len(r.buckets("librato")); n == 0 {
		t.Fatal("nothing flushed")
	}
	r.mu.Lock()
	r.verdict, r.hold = nil, true // a resend that dies mid-send
	r.mu.Unlock()
	c.set(c.now().Add(minRetry))
	a.Tick(ctx)
	lib, rw := len(r.buckets("librato")), r.buckets("remote_write")
	if len(rw) < 2 {
		t.Fatalf("remote_write not resent: %d deliveries", len(rw))
	}
	// Worker a dies without releasing; b takes over after the lease TTL and
	// resends to remote_write only, with identical values and totals.
	b := open(t, srv, "b", c, &recorder{}, "librato", "remote_write")
	rb := &recorder{}
	b.cfg.Deliver = rb.deliver("librato", "remote_write")
	b.Tick(ctx)
	if n := len(rb.buckets("remote_write")); n != 0 {
		t.Fatal("b flushed while a's lease was live")
	}
	time.Sleep(1100 * time.Millisecond) // the lease TTL (real time in Redis)
	b.Tick(ctx)
	if n := len(rb.buckets("librato")); n != 0 {
		t.Fatalf("librato had the bucket; resent %d times", n)
	}
	again := rb.buckets("remote_write")
	if len(again) != len(rw)/2 {
		t.Fatalf("b resent %d parts, want %d", len(again), len(rw)/2)
	}
	if len(r.buckets("librato")) != lib {
		t.Fatal("librato got more")
	}
	for _, bk := range again {
		for _, s := range bk.Series {
			var first *aggregate.Series
			for _, old := range rw {
				if f := find(old, s.Name, s.Source); f != nil {
					first = f
					break
				}
			}
			if first == nil || first.Sum != s.Sum || first.Median != s.Median || first.P99 != s.P99 || first.Count != s.Count ||
				*first.Totals != *s.Totals {
				t.Fatalf("resend of %s/%s differs: %+v vs %+v", s.Name, s.Source, first, s)
			}
		}
	}
	// lat/web.1 and lat/web.2 may hash to different partitions (separate
	// buckets): look in every part resent.
	var s1 *aggregate.Series
	for _, bk := range again {
		if s := find(bk, "lat", "web.1"); s != nil {
			s1 = s
		}
	}
	if s1 == nil || s1.Count != 3 || s1.Median != 5 || s1.Max != 9 {
		t.Fatalf("merged lat/web.1 in the resend: %+v, want count 3, median 5, max 9", s1)
	}
}

func TestRedisDownKeepsPartials(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	start := time.Now().Truncate(res).Add(-time.Hour)
	c := &clock{t: start}
	r := &recorder{}
	a := open(t, srv, "a", c, r, "librato")
	k := [2]string{"req", "web.1"}
	if err := a.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{k: {1}})); err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := a.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{k: {10}})); err == nil {
			t.Fatalf("hand-over %d with Redis paused: no error", i)
		}
	}
	if st := a.Stats(); st.HandoverErrors != 3 || st.UnsentStates == 0 || a.DownSince().IsZero() {
		t.Fatalf("stats while down: %+v", st)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := a.Handover(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.UnsentStates != 0 || !a.DownSince().IsZero() {
		t.Fatalf("stats after recovery: %+v", st)
	}
	c.set(start.Add(2 * res))
	a.Tick(ctx)
	bs := r.buckets("librato")
	if len(bs) != 1 || find(bs[0], "req", "web.1").Sum != 31 {
		t.Fatalf("after the outage: %+v", bs)
	}
}

func TestTakeUnsent(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	start := time.Now().Truncate(res).Add(-time.Hour)
	a := open(t, srv, "a", &clock{t: start}, &recorder{}, "librato")
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer srv.Resume()
	k := [2]string{"req", "web.1"}
	_ = a.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{k: {1, 2}}))
	_ = a.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{k: {4}}))
	_ = a.Handover(ctx, takeFrom(t, start.Add(res), metric.Counter, map[[2]string][]float64{k: {8}}))
	got := a.TakeUnsent(start)
	if len(got) != 1 || len(got[0].States) != 1 || got[0].States[0].Series().Sum != 7 {
		t.Fatalf("TakeUnsent: %+v", got)
	}
	if st := a.Stats(); st.UnsentStates != 1 {
		t.Fatalf("left unsent: %d, want the next bucket's 1", st.UnsentStates)
	}
}

func TestFrameSeen(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	c := &clock{t: time.Now()}
	a := open(t, srv, "a", c, &recorder{}, "x")
	b := open(t, srv, "b", c, &recorder{}, "x")
	if dup, err := a.FrameSeen(ctx, "", "f1", time.Minute); dup || err != nil {
		t.Fatalf("first: %v %v", dup, err)
	}
	if dup, err := b.FrameSeen(ctx, "", "f1", time.Minute); !dup || err != nil {
		t.Fatalf("retry on the other worker: %v %v", dup, err)
	}
	if dup, _ := b.FrameSeen(ctx, "", "f2", time.Minute); dup {
		t.Fatal("f2 seen")
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	dup, err := a.FrameSeen(ctx, "", "f3", time.Minute)
	if dup || err == nil || time.Since(t0) > FrameTimeout+time.Second {
		t.Fatalf("Redis paused: %v %v after %v", dup, err, time.Since(t0))
	}
	t0 = time.Now()
	if _, err := a.FrameSeen(ctx, "", "f4", time.Minute); !errors.Is(err, errFramePaused) || time.Since(t0) > 50*time.Millisecond {
		t.Fatalf("breaker: %v after %v", err, time.Since(t0))
	}
	_ = srv.Resume()
	if st := a.Stats(); st.FrameErrors != 2 || b.Stats().FramesDuplicate != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFeedShowsEveryWorkersBuckets(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now().Truncate(res).Add(-time.Hour)
	c := &clock{t: start}
	a := open(t, srv, "a", c, &recorder{}, "librato")
	b := open(t, srv, "b", c, &recorder{}, "librato")
	views := make(chan *aggregate.Bucket, 10)
	go b.Feed(ctx, func(bk *aggregate.Bucket) { views <- bk })
	time.Sleep(200 * time.Millisecond) // Feed starts reading at "$"
	vals := map[[2]string][]float64{}
	for i := range 20 {
		vals[[2]string{"req", fmt.Sprintf("web.%d", i)}] = []float64{float64(i)}
	}
	if err := a.Handover(ctx, takeFrom(t, start, metric.Counter, vals)); err != nil {
		t.Fatal(err)
	}
	c.set(start.Add(2 * res))
	a.Tick(ctx) // a flushes every partition; b only views
	select {
	case bk := <-views:
		if len(bk.Series) != 20 || !bk.Start.Equal(start) || find(bk, "req", "web.7").Sum != 7 {
			t.Fatalf("viewed %d series at %v", len(bk.Series), bk.Start)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("b's viewer saw nothing")
	}
	select {
	case bk := <-views:
		t.Fatalf("a second view: %v", bk.Start)
	case <-time.After(FeedWindow + 500*time.Millisecond):
	}
}

func TestConfigErrorsHideThePassword(t *testing.T) {
	for _, tc := range []struct {
		url, want     string
		skip, cluster bool
	}{
		{"", "REDIS_URL: empty", false, false},
		{"http://u:s3cret@host:1", `REDIS_URL: scheme "http" is not redis or rediss`, false, false},
		{"redis://u:s3cret@ho st:1", "REDIS_URL: not a URL", false, false},
		{"redis://u:s3cret@host:1/notanumber", "REDIS_URL", false, false},
		{"redis://u:s3cret@host:1", "REDIS_TLS_SKIP_VERIFY: true with a redis:// REDIS_URL", true, false},
		{"redis://u:s3cret@host:1/2", "REDIS_URL: database 2 with REDIS_CLUSTER=true: a Redis Cluster has database 0 only", false, true},
	} {
		_, err := Open(Config{URL: tc.url, TLSSkipVerify: tc.skip, Cluster: tc.cluster, Resolution: res, Deliver: func(*aggregate.Bucket, func(string) bool) {}})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cret") || !errors.Is(err, ErrConfig) {
			t.Errorf("%q: %v, want %q without the password", tc.url, err, tc.want)
		}
	}
	s, err := Open(Config{URL: "rediss://:s3cret@host:6380", TLSSkipVerify: true, Resolution: res, Deliver: func(*aggregate.Bucket, func(string) bool) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if o := s.rdb.(*redis.Client).Options(); o.TLSConfig == nil || !o.TLSConfig.InsecureSkipVerify || o.Password != "s3cret" {
		t.Fatalf("rediss with skip-verify: %+v", o.TLSConfig)
	}
	// REDIS_CLUSTER=true: a cluster client seeded with the URL's node, same
	// credentials and TLS.
	cs, err := Open(Config{URL: "rediss://u:s3cret@host:6380", Cluster: true, Resolution: res, Deliver: func(*aggregate.Bucket, func(string) bool) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	cc, ok := cs.rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("REDIS_CLUSTER=true: client %T, want *redis.ClusterClient", cs.rdb)
	}
	if o := cc.Options(); fmt.Sprint(o.Addrs) != "[host:6380]" || o.Username != "u" || o.Password != "s3cret" || o.TLSConfig == nil {
		t.Fatalf("cluster options: addrs %v, user %q, TLS %v", o.Addrs, o.Username, o.TLSConfig != nil)
	}
}

// TestDropCounters: a partial of a series under another kind, a partial that
// does not decode, a bucket an outlet refuses for good and a bucket no
// outlet got within MaxAge are each dropped and counted; the good values
// around them are delivered.
func TestDropCounters(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	start := time.Now().Truncate(res).Add(-time.Hour)
	c := &clock{t: start.Add(time.Second)}
	r := &recorder{verdict: func(o string) error {
		if o == "remote_write" {
			return fmt.Errorf("remote_write: %w: 400 bad request", outlet.ErrPermanent)
		}
		return nil
	}}
	a := open(t, srv, "a", c, r, "librato", "remote_write")
	k := [2]string{"req", "web.1"}
	if err := a.Handover(ctx, takeFrom(t, start, metric.Counter, map[[2]string][]float64{k: {1, 2}})); err != nil {
		t.Fatal(err)
	}
	// The same series as a sample: the first kind wins.
	if err := a.Handover(ctx, takeFrom(t, start, metric.Sample, map[[2]string][]float64{k: {50}})); err != nil {
		t.Fatal(err)
	}
	// A partial that does not decode, beside the good one.
	parts := a.keys(partition("", k[0], k[1], 4)).parts(start.Unix())
	if _, err := srv.Do("HSET", parts, "junk", "not a partial"); err != nil {
		t.Fatal(err)
	}
	// A bucket handed over, then nothing flushed until it is past MaxAge.
	old := start.Add(res)
	if err := a.Handover(ctx, takeFrom(t, old, metric.Counter, map[[2]string][]float64{{"old", "web.1"}: {7}})); err != nil {
		t.Fatal(err)
	}
	c.set(start.Add(res + 2*time.Second))
	a.Tick(ctx) // flush start: librato accepts, remote_write refuses
	a.Tick(ctx) // record the verdicts
	var got []float64
	for _, b := range r.buckets("librato") {
		if s := find(b, "req", "web.1"); s != nil {
			got = append(got, s.Sum)
			if s.Kind != metric.Counter {
				t.Errorf("kind %v, want the first (counter)", s.Kind)
			}
		}
	}
	if fmt.Sprint(got) != "[3]" {
		t.Fatalf("librato got req/web.1 sums %v, want [3]", got)
	}
	st := a.Stats()
	if st.SeriesConflicts != 1 || st.BadBlobs != 1 || st.OutletRefused != 1 {
		t.Fatalf("SeriesConflicts %d, BadBlobs %d, OutletRefused %d; want 1 each", st.SeriesConflicts, st.BadBlobs, st.OutletRefused)
	}
	if n := len(r.buckets("remote_write")); n != 1 {
		t.Fatalf("remote_write: %d deliveries, want 1 (a refusal is not resent)", n)
	}

	c.set(old.Add(res + DefaultMaxAge + time.Minute))
	a.Tick(ctx)
	for _, b := range r.buckets("librato") {
		if find(b, "old", "web.1") != nil {
			t.Fatal("a bucket older than MaxAge was delivered")
		}
	}
	if st := a.Stats(); st.BucketsAbandoned != 1 {
		t.Fatalf("BucketsAbandoned %d, want 1", st.BucketsAbandoned)
	}
}
