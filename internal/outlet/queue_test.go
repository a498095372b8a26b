package outlet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/testproc"
)

// fakeSender records accepted batches (by Body) and answers each attempt with
// the error its script returns.
type fakeSender struct {
	mu       sync.Mutex
	script   func(b *Batch, attempt int) error // attempt counts per body, from 1
	attempts map[string]int
	accepted []string
	block    chan struct{} // when non-nil, Send waits for it (or ctx)

	inFlight, maxInFlight atomic.Int32
}

func newFakeSender(script func(b *Batch, attempt int) error) *fakeSender {
	return &fakeSender{script: script, attempts: map[string]int{}}
}

func (f *fakeSender) Send(ctx context.Context, b *Batch) error {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxInFlight.Load()
		if n <= m || f.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := string(b.Body)
	f.attempts[key]++
	var err error
	if f.script != nil {
		err = f.script(b, f.attempts[key])
	}
	if err == nil {
		f.accepted = append(f.accepted, key)
	}
	return err
}

func (f *fakeSender) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.accepted...)
}

func testLogger() (*slog.Logger, *testproc.LimitedBuffer) {
	buf := &testproc.LimitedBuffer{}
	return slog.New(slog.NewTextHandler(buf, nil)), buf
}

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a settable clock for the age bound and log intervals.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func batch(i int) Batch {
	return Batch{Body: fmt.Appendf(nil, "b%03d", i), N: 10, Time: t0}
}

func names(from, to int) []string {
	var s []string
	for i := from; i < to; i++ {
		s = append(s, fmt.Sprintf("b%03d", i))
	}
	return s
}

func closeWithin(t *testing.T, q *Queue, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return q.Close(ctx)
}

func noBackoff(int) time.Duration { return 0 }

func tinyBackoff(int) time.Duration { return time.Millisecond }

func equalSlices(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("accepted:\n got %v\nwant %v", got, want)
	}
}

func TestQueueInOrder(t *testing.T) {
	clk := &fakeClock{now: t0}
	// Every batch fails twice before it is accepted; with Concurrency 1 the
	// order must hold anyway.
	s := newFakeSender(func(b *Batch, attempt int) error {
		if attempt <= 2 {
			return errors.New("HTTP 503")
		}
		return nil
	})
	log, _ := testLogger()
	q := NewQueue(s, QueueConfig{Concurrency: 1, Backoff: tinyBackoff, Now: clk.Now, Logger: log})
	for i := range 20 {
		q.Push(batch(i))
	}
	if err := closeWithin(t, q, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	equalSlices(t, s.got(), names(0, 20))
	st := q.Stats()
	want := QueueStats{Sent: 20, SentMeasurements: 200, Failed: 40, LastLatency: st.LastLatency}
	if st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
}

func TestQueueRetryUntilAccepted(t *testing.T) {
	tests := map[string]struct {
		err          error
		failures     int
		unauthorized int64
	}{
		"transient":    {err: errors.New("HTTP 500"), failures: 5},
		"unauthorized": {err: fmt.Errorf("HTTP 401: %w", ErrUnauthorized), failures: 7, unauthorized: 7},
		"rate limited": {err: errors.New("HTTP 429"), failures: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := newFakeSender(func(b *Batch, attempt int) error {
				if attempt <= tc.failures {
					return tc.err
				}
				return nil
			})
			log, _ := testLogger()
			q := NewQueue(s, QueueConfig{Backoff: tinyBackoff, Logger: log, Now: (&fakeClock{now: t0}).Now})
			q.Push(batch(1))
			if err := closeWithin(t, q, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			equalSlices(t, s.got(), names(1, 2))
			st := q.Stats()
			if st.Sent != 1 || st.Failed != int64(tc.failures) || st.Unauthorized != tc.unauthorized || st.Dropped != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestQueueDropOldestWhenFull(t *testing.T) {
	s := newFakeSender(nil)
	s.block = make(chan struct{})
	log, logs := testLogger()
	q := NewQueue(s, QueueConfig{Concurrency: 1, MaxBatches: 3, Backoff: noBackoff, Logger: log, Now: (&fakeClock{now: t0}).Now})
	q.Push(batch(0))
	// Wait for the worker to hold b000, so the ring holds the rest.
	waitFor(t, func() bool { return s.inFlight.Load() == 1 })
	for i := 1; i <= 6; i++ {
		q.Push(batch(i))
	}
	// b001..b003 were pushed out by b004..b006.
	st := q.Stats()
	if st.Dropped != 3 || st.DroppedFull != 3 || st.DroppedMeasurements != 30 || st.Depth != 4 {
		t.Fatalf("stats after overflow %+v", st)
	}
	close(s.block)
	if err := closeWithin(t, q, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	equalSlices(t, s.got(), []string{"b000", "b004", "b005", "b006"})
	if n := strings.Count(logs.String(), `reason="queue full"`); n != 3 {
		t.Fatalf("%d queue-full log lines, want 3:\n%s", n, logs)
	}
}

func TestQueueAgeBound(t *testing.T) {
	clk := &fakeClock{now: t0}
	var q *Queue
	// The receiver is down until the clock has moved past MaxAge.
	s := newFakeSender(func(b *Batch, attempt int) error {
		if attempt == 1 {
			clk.Add(90 * time.Minute) // each failure costs 90 minutes
			return errors.New("HTTP 503")
		}
		return nil
	})
	log, logs := testLogger()
	q = NewQueue(s, QueueConfig{Concurrency: 1, MaxAge: 2 * time.Hour, Backoff: noBackoff, Logger: log, Now: clk.Now})

	// Too old at push time: dropped at once.
	q.Push(Batch{Body: []byte("stale"), N: 4, Time: t0.Add(-2*time.Hour - time.Second)})
	// Exactly MaxAge old is still fine.
	q.Push(Batch{Body: []byte("edge"), N: 1, Time: t0.Add(-2 * time.Hour)})
	if err := closeWithin(t, q, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	st := q.Stats()
	// "edge" fails once (clock +90m) and is then 3.5h old: dropped before retry.
	if st.DroppedExpired != 2 || st.DroppedMeasurements != 5 || st.Sent != 0 {
		t.Fatalf("stats %+v", st)
	}
	if n := strings.Count(logs.String(), `reason="too old"`); n != 2 {
		t.Fatalf("%d too-old log lines, want 2:\n%s", n, logs)
	}
}

func TestQueueAgeBoundWhileQueued(t *testing.T) {
	clk := &fakeClock{now: t0}
	s := newFakeSender(nil)
	s.block = make(chan struct{})
	log, _ := testLogger()
	q := NewQueue(s, QueueConfig{Concurrency: 1, MaxAge: time.Hour, Backoff: noBackoff, Logger: log, Now: clk.Now})
	q.Push(Batch{Body: []byte("first"), N: 1, Time: t0})
	waitFor(t, func() bool { return s.inFlight.Load() == 1 })
	q.Push(Batch{Body: []byte("old"), N: 2, Time: t0.Add(-30 * time.Minute)})
	q.Push(Batch{Body: []byte("new"), N: 3, Time: t0.Add(30 * time.Minute)})
	clk.Add(45 * time.Minute) // "old" is now 75 minutes old, "new" 15
	close(s.block)
	if err := closeWithin(t, q, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	equalSlices(t, s.got(), []string{"first", "new"})
	if st := q.Stats(); st.DroppedExpired != 1 || st.DroppedMeasurements != 2 || st.Sent != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestQueuePermanentDropsOnlyThatBatch(t *testing.T) {
	s := newFakeSender(func(b *Batch, attempt int) error {
		if string(b.Body) == "b002" {
			return fmt.Errorf(`librato: HTTP 400: {"errors":{"params":{"name":["is invalid"]}}}: %w`, ErrPermanent)
		}
		return nil
	})
	log, logs := testLogger()
	q := NewQueue(s, QueueConfig{Concurrency: 1, Backoff: noBackoff, Logger: log, Now: (&fakeClock{now: t0}).Now})
	for i := range 5 {
		q.Push(batch(i))
	}
	if err := closeWithin(t, q, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	equalSlices(t, s.got(), []string{"b000", "b001", "b003", "b004"})
	st := q.Stats()
	if st.DroppedPermanent != 1 || st.Dropped != 1 || st.DroppedMeasurements != 10 || st.Failed != 1 || st.Sent != 4 {
		t.Fatalf("stats %+v", st)
	}
	if !strings.Contains(logs.String(), `is invalid`) || !strings.Contains(logs.String(), `reason="refused by receiver"`) {
		t.Fatalf("the drop log lacks the reason or the error body:\n%s", logs)
	}
}

func TestQueueUnauthorizedLoggedOncePerInterval(t *testing.T) {
	clk := &fakeClock{now: t0}
	var fail atomic.Bool
	fail.Store(true)
	s := newFakeSender(func(b *Batch, attempt int) error {
		if fail.Load() {
			return fmt.Errorf("librato: HTTP 401: %w", ErrUnauthorized)
		}
		return nil
	})
	log, logs := testLogger()
	q := NewQueue(s, QueueConfig{Concurrency: 1, AuthLogEvery: time.Minute, Backoff: tinyBackoff, Logger: log, Now: clk.Now})
	q.Push(batch(0))
	waitFor(t, func() bool { return q.Stats().Unauthorized >= 5 })
	if n := strings.Count(logs.String(), "credentials refused"); n != 1 {
		t.Fatalf("%d credentials log lines before the interval passed, want 1:\n%s", n, logs)
	}
	clk.Add(time.Minute)
	before := q.Stats().Unauthorized
	waitFor(t, func() bool { return q.Stats().Unauthorized >= before+5 })
	if n := strings.Count(logs.String(), "credentials refused"); n != 2 {
		t.Fatalf("%d credentials log lines after one interval, want 2:\n%s", n, logs)
	}
	fail.Store(false)
	if err := closeWithin(t, q, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	equalSlices(t, s.got(), []string{"b000"})
	if st := q.Stats(); st.Dropped != 0 || st.Sent != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestQueueCloseDrains(t *testing.T) {
	s := newFakeSender(func(b *Batch, attempt int) error {
		if attempt == 1 {
			return errors.New("connection reset")
		}
		return nil
	})
	log, _ := testLogger()
	q := NewQueue(s, QueueConfig{Concurrency: 3, Backoff: tinyBackoff, Logger: log, Now: (&fakeClock{now: t0}).Now})
	for i := range 50 {
		q.Push(batch(i))
	}
	if err := closeWithin(t, q, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	got := s.got()
	if len(got) != 50 {
		t.Fatalf("%d accepted, want 50", len(got))
	}
	seen := map[string]bool{}
	for _, g := range got {
		if seen[g] {
			t.Fatalf("%s accepted twice", g)
		}
		seen[g] = true
	}
	// Pushing after Close drops and counts.
	q.Push(batch(99))
	st := q.Stats()
	if st.Sent != 50 || st.DroppedShutdown != 1 || st.Depth != 0 {
		t.Fatalf("stats %+v", st)
	}
	// A second Close returns the first result.
	if err := q.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestQueueCloseReportsLeftovers(t *testing.T) {
	s := newFakeSender(func(b *Batch, attempt int) error { return errors.New("HTTP 503") })
	log, logs := testLogger()
	q := NewQueue(s, QueueConfig{Concurrency: 2, Backoff: tinyBackoff, Logger: log, Now: (&fakeClock{now: t0}).Now})
	for i := range 7 {
		q.Push(batch(i))
	}
	start := time.Now()
	err := closeWithin(t, q, 50*time.Millisecond)
	if time.Since(start) > 5*time.Second {
		t.Fatalf("Close took %v", time.Since(start))
	}
	if !errors.Is(err, ErrUndelivered) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close error %v, want ErrUndelivered and DeadlineExceeded", err)
	}
	const wantMsg = "outlet: close: 7 batches (70 measurements) dropped"
	if !strings.HasPrefix(err.Error(), wantMsg) {
		t.Fatalf("Close error %q, want prefix %q", err, wantMsg)
	}
	st := q.Stats()
	if st.DroppedShutdown != 7 || st.DroppedMeasurements != 70 || st.Depth != 0 || st.Sent != 0 {
		t.Fatalf("stats %+v", st)
	}
	if n := strings.Count(logs.String(), `reason=shutdown`); n != 7 {
		t.Fatalf("%d shutdown log lines, want 7", n)
	}
}

func TestQueueCloseCancelsBlockedSend(t *testing.T) {
	s := newFakeSender(nil)
	s.block = make(chan struct{}) // never released: Send returns on ctx only
	log, _ := testLogger()
	q := NewQueue(s, QueueConfig{Concurrency: 1, Logger: log, Now: (&fakeClock{now: t0}).Now})
	q.Push(batch(0))
	q.Push(batch(1))
	err := closeWithin(t, q, 20*time.Millisecond)
	if !errors.Is(err, ErrUndelivered) {
		t.Fatalf("Close error %v", err)
	}
	if st := q.Stats(); st.DroppedShutdown != 2 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestQueueConcurrencyBound(t *testing.T) {
	for _, conc := range []int{1, 2, 4} {
		t.Run(fmt.Sprint(conc), func(t *testing.T) {
			s := newFakeSender(func(b *Batch, attempt int) error {
				time.Sleep(time.Millisecond)
				return nil
			})
			log, _ := testLogger()
			q := NewQueue(s, QueueConfig{Concurrency: conc, Logger: log, Now: (&fakeClock{now: t0}).Now})
			for i := range 40 {
				q.Push(batch(i))
			}
			if err := closeWithin(t, q, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			if m := s.maxInFlight.Load(); m > int32(conc) {
				t.Fatalf("%d sends in flight, bound %d", m, conc)
			}
			if conc > 1 && s.maxInFlight.Load() < 2 {
				t.Logf("only %d in flight (scheduling)", s.maxInFlight.Load())
			}
			if got := len(s.got()); got != 40 {
				t.Fatalf("%d accepted", got)
			}
		})
	}
}

func TestQueueConcurrentPush(t *testing.T) {
	s := newFakeSender(nil)
	log, _ := testLogger()
	q := NewQueue(s, QueueConfig{Concurrency: 2, MaxBatches: 10000, Logger: log, Now: (&fakeClock{now: t0}).Now})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				q.Push(batch(g*1000 + i))
				_ = q.Stats()
			}
		}()
	}
	wg.Wait()
	if err := closeWithin(t, q, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if st := q.Stats(); st.Sent != 400 || st.SentMeasurements != 4000 {
		t.Fatalf("stats %+v", st)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(100 * time.Microsecond)
	}
}

type nopSender struct{}

func (nopSender) Send(context.Context, *Batch) error { return nil }

func BenchmarkQueuePushSend(b *testing.B) {
	s := nopSender{}
	log := slog.New(slog.DiscardHandler)
	q := NewQueue(s, QueueConfig{Concurrency: 2, MaxBatches: 1 << 16, Logger: log})
	body := []byte("x")
	b.ReportAllocs()
	for b.Loop() {
		q.Push(Batch{Body: body, N: 1, Time: time.Now()})
	}
	if err := q.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// TestPushBucketDone: a bucket's Done learns once per outlet whether all its
// batches were accepted, for every way a batch settles.
func TestPushBucketDone(t *testing.T) {
	s := newFakeSender(func(b *Batch, attempt int) error {
		if string(b.Body) == "b011" {
			return fmt.Errorf("HTTP 400: %w", ErrPermanent)
		}
		return nil
	})
	log, _ := testLogger()
	q := NewQueue(s, QueueConfig{Name: "test", Concurrency: 1, Backoff: noBackoff, Logger: log, Now: (&fakeClock{now: t0}).Now})
	type result struct {
		outlet string
		err    error
	}
	results := make(chan result, 10)
	done := func(o string, err error) { results <- result{o, err} }
	good := &aggregate.Bucket{Start: t0, Done: done}
	bad := &aggregate.Bucket{Start: t0, Done: done}
	empty := &aggregate.Bucket{Start: t0, Done: done}
	PushBucket(q, "test", good, []Batch{batch(0), batch(1), batch(2)})
	PushBucket(q, "test", bad, []Batch{batch(10), batch(11), batch(12)})
	PushBucket(q, "test", empty, nil)
	if err := closeWithin(t, q, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	var got []result
	for range 3 {
		select {
		case r := <-results:
			got = append(got, r)
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of 3 Done calls: %v", len(got), got)
		}
	}
	select {
	case r := <-results:
		t.Fatalf("a fourth Done call: %v", r)
	default:
	}
	var ok, dropped int
	for _, r := range got {
		if r.outlet != "test" {
			t.Errorf("Done got outlet %q", r.outlet)
		}
		switch {
		case r.err == nil:
			ok++
		case errors.Is(r.err, ErrDropped) && strings.Contains(r.err.Error(), "refused by receiver"):
			dropped++
		default:
			t.Errorf("unexpected Done error %v", r.err)
		}
	}
	if ok != 2 || dropped != 1 {
		t.Fatalf("Done: %d accepted, %d dropped; want 2 and 1 (%v)", ok, dropped, got)
	}

	// Batches still queued when Close gives up are reported as dropped.
	block := newFakeSender(func(*Batch, int) error { return nil })
	block.block = make(chan struct{})
	q = NewQueue(block, QueueConfig{Name: "test", Concurrency: 1, Logger: log, Now: (&fakeClock{now: t0}).Now})
	PushBucket(q, "test", good, []Batch{batch(0), batch(1)})
	if err := closeWithin(t, q, 50*time.Millisecond); !errors.Is(err, ErrUndelivered) {
		t.Fatalf("Close: %v, want ErrUndelivered", err)
	}
	select {
	case r := <-results:
		if !errors.Is(r.err, ErrDropped) || !strings.Contains(r.err.Error(), "shutdown") {
			t.Fatalf("Done after an aborted Close: %v", r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no Done after an aborted Close")
	}
}

// TestQueueRetryAfter: a RetryAfterError holds the next attempt back for at
// least its delay (longer than the backoff), capped at MaxRetryAfter, and no
// other batch starts meanwhile.
func TestQueueRetryAfter(t *testing.T) {
	tests := map[string]struct {
		delay, maxRetryAfter time.Duration
		minGap, maxGap       time.Duration
	}{
		"honoured": {delay: 150 * time.Millisecond, minGap: 150 * time.Millisecond, maxGap: 5 * time.Second},
		"capped":   {delay: time.Hour, maxRetryAfter: 30 * time.Millisecond, minGap: 30 * time.Millisecond, maxGap: 5 * time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			var times []time.Time
			var order []string
			s := newFakeSender(func(b *Batch, attempt int) error {
				mu.Lock()
				defer mu.Unlock()
				times = append(times, time.Now())
				order = append(order, string(b.Body))
				if string(b.Body) == "b000" && attempt == 1 {
					return RetryAfter(errors.New("HTTP 429"), tc.delay)
				}
				return nil
			})
			log, _ := testLogger()
			q := NewQueue(s, QueueConfig{Concurrency: 2, Backoff: noBackoff, MaxRetryAfter: tc.maxRetryAfter, Logger: log, Now: (&fakeClock{now: t0}).Now})
			q.Push(batch(0))
			waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(times) == 1 })
			q.Push(batch(1)) // must wait for the pause too
			if err := closeWithin(t, q, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(times) != 3 {
				t.Fatalf("%d attempts (%v), want 3", len(times), order)
			}
			for i := 1; i < 3; i++ {
				if gap := times[i].Sub(times[0]); gap < tc.minGap || gap > tc.maxGap {
					t.Errorf("attempt %d (%s) %v after the refused one, want in [%v, %v]", i+1, order[i], gap, tc.minGap, tc.maxGap)
				}
			}
			if st := q.Stats(); st.Sent != 2 || st.Failed != 1 || st.Dropped != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		in   string
		want time.Duration
	}{
		"seconds":   {"120", 2 * time.Minute},
		"spaces":    {" 7 ", 7 * time.Second},
		"zero":      {"0", 0},
		"negative":  {"-5", 0},
		"empty":     {"", 0},
		"garbage":   {"soon", 0},
		"http date": {"Tue, 01 Dec 2026 14:00:30 GMT", 30 * time.Second},
		"past date": {"Tue, 01 Dec 2026 13:00:00 GMT", 0},
		"huge":      {"99999999999999999", time.Duration(math.MaxInt64/int64(time.Second)) * time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := ParseRetryAfter(tc.in, now); got != tc.want {
				t.Fatalf("ParseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// TestQueueWaitBackpressure: with Wait, a full queue makes Push wait for a
// batch to start instead of dropping the oldest, so that a producer faster
// than the receiver (a merged bucket larger than the queue) gets every batch
// delivered, at the receiver's pace; and once a wait ran out (the receiver
// stopped taking batches) pushes drop at once again, counted, until a batch
// starts.
func TestQueueWaitBackpressure(t *testing.T) {
	for _, tc := range []struct {
		name    string
		wait    time.Duration
		dropped int64
	}{
		{"drop oldest", 0, 17},
		{"backpressure", 10 * time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newFakeSender(func(*Batch, int) error { time.Sleep(time.Millisecond); return nil })
			q := NewQueue(s, QueueConfig{Concurrency: 1, MaxBatches: 2, Backoff: noBackoff, Wait: tc.wait, Logger: slog.New(slog.DiscardHandler), Now: (&fakeClock{now: t0}).Now})
			for i := range 20 {
				q.Push(batch(i))
			}
			if err := closeWithin(t, q, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			st := q.Stats()
			if tc.dropped == 0 && (st.Dropped != 0 || len(s.got()) != 20 || st.PushWaits == 0) {
				t.Fatalf("delivered %d of 20, stats %+v", len(s.got()), st)
			}
			if tc.dropped > 0 && (st.DroppedFull < 1 || int64(len(s.got()))+st.DroppedFull != 20 || st.PushWaits != 0) {
				t.Fatalf("delivered %d, stats %+v; want drops adding up to 20", len(s.got()), st)
			}
		})
	}
	t.Run("receiver stopped", func(t *testing.T) {
		s := newFakeSender(nil)
		s.block = make(chan struct{})
		q := NewQueue(s, QueueConfig{Concurrency: 1, MaxBatches: 2, Backoff: noBackoff, Wait: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler), Now: (&fakeClock{now: t0}).Now})
		q.Push(batch(0))
		waitFor(t, func() bool { return s.inFlight.Load() == 1 })
		began := time.Now()
		for i := 1; i <= 10; i++ {
			q.Push(batch(i))
		}
		// One wait of 100 ms, then drops at once: not 8 waits.
		if d := time.Since(began); d > 600*time.Millisecond {
			t.Fatalf("10 pushes on a stalled queue took %v", d)
		}
		if st := q.Stats(); st.PushWaits != 1 || st.DroppedFull != 8 {
			t.Fatalf("stats %+v, want 1 wait and 8 dropped", st)
		}
		close(s.block)
		if err := closeWithin(t, q, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	})
}
