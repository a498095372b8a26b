package outlet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dynometrics/dynometrics/internal/backoff"
	"github.com/dynometrics/dynometrics/internal/throttle"
)

// Defaults for the zero values of QueueConfig.
const (
	// DefaultMaxBatches is how many batches wait before the oldest is dropped.
	// At one batch per minute that is more than 16 hours, well past MaxAge.
	DefaultMaxBatches = 1000
	// DefaultMaxAge is how old a batch's Time may get before it is dropped:
	// Librato refuses measure_time older than about two hours.
	DefaultMaxAge = 2 * time.Hour
	// DefaultConcurrency is how many requests are in flight at once.
	DefaultConcurrency = 2
	// DefaultMinBackoff is the first retry delay.
	DefaultMinBackoff = 500 * time.Millisecond
	// DefaultMaxBackoff caps the retry delay.
	DefaultMaxBackoff = 30 * time.Second
	// DefaultAuthLogEvery is the minimum interval between two credentials
	// errors (and, separately, two transient-failure warnings) in the log.
	DefaultAuthLogEvery = time.Minute
	// DefaultMaxRetryAfter caps how long a receiver's Retry-After may hold
	// the queue back (RetryAfterError), so that a mistaken "Retry-After:
	// 86400" does not stall delivery until every batch expires.
	DefaultMaxRetryAfter = 5 * time.Minute
)

// ErrUndelivered is wrapped by the error Close returns when batches were still
// queued or in flight when its context ended.
var ErrUndelivered = errors.New("batches undelivered at close")

// QueueConfig bounds and tunes a Queue. Zero values mean the documented defaults.
type QueueConfig struct {
	Name         string        // outlet name for logs and errors, e.g. "librato"
	MaxBatches   int           // queued batches before the oldest are dropped (default 1000)
	MaxAge       time.Duration // batches whose Time is older are dropped (default 2h: Librato refuses older measure_time)
	Concurrency  int           // requests in flight at once (default 2)
	MinBackoff   time.Duration // first retry delay (default 500ms), doubled per failure with jitter
	MaxBackoff   time.Duration // retry delay cap (default 30s)
	AuthLogEvery time.Duration // credentials errors are logged at most this often (default 1m)
	// MaxRetryAfter caps the delay a RetryAfterError asks for (default 5m).
	MaxRetryAfter time.Duration
	// Wait, when positive, is backpressure instead of a drop: Push on a
	// full queue waits up to Wait for a batch to start sending before it
	// drops the oldest; once a wait ran out, pushes drop at once until a
	// batch starts, so a receiver that is down does not stall every push.
	// For producers that keep what a drop loses elsewhere (the shared
	// state resends a bucket from Redis). Default 0: drop at once.
	Wait   time.Duration
	Logger *slog.Logger     // default slog.Default()
	Now    func() time.Time // clock for the age bound and log intervals; default time.Now

	// Backoff, when set, replaces the default retry delay,
	// backoff.EqualJitter(MinBackoff, MaxBackoff, attempt), where attempt
	// counts the batch's consecutive failures from 1. Tests use it to remove
	// jitter.
	Backoff func(attempt int) time.Duration
}

// QueueStats are cumulative counts since the Queue started, plus the current depth.
// Dropped is the sum of the four DroppedXxx reasons (the same holds for
// measurements).
type QueueStats struct {
	Sent                int64         `metric:"batches_sent"`              // batches accepted by the receiver
	SentMeasurements    int64         `metric:"measurements_sent"`         // measurements in them
	Failed              int64         `metric:"send_failures"`             // send attempts that failed (each retry counts)
	Dropped             int64         `metric:"batches_dropped,drop"`      // batches given up: permanent error, queue full, too old, shutdown
	DroppedMeasurements int64         `metric:"measurements_dropped,drop"` // measurements in them
	Depth               int           `metric:"queue_depth,gauge"`         // batches waiting now, including those in flight or waiting to be retried
	LastLatency         time.Duration `metric:"latency_ms,gauge"`          // of the last accepted request
	PushWaits           int64         `metric:"push_waits"`                // pushes that found the queue full and waited for room (QueueConfig.Wait: backpressure)

	Unauthorized     int64 `metric:"-"`                               // failed attempts that were credentials errors (also counted in Failed)
	DroppedFull      int64 `metric:"batches_dropped.queue_full,drop"` // batches dropped because MaxBatches were already queued
	DroppedExpired   int64 `metric:"batches_dropped.expired,drop"`    // batches dropped because their Time was older than MaxAge
	DroppedPermanent int64 `metric:"batches_dropped.refused,drop"`    // batches the receiver refused for good (ErrPermanent)
	DroppedShutdown  int64 `metric:"batches_dropped.shutdown,drop"`   // batches pushed after Close or still undelivered when Close's context ended
}

// Drop reasons, used in logs.
const (
	reasonFull      = "queue full"
	reasonExpired   = "too old"
	reasonPermanent = "refused by receiver"
	reasonShutdown  = "shutdown"
)

// Queue delivers batches through a Sender: in order, a few at a time, retrying
// with exponential backoff and jitter until accepted, bounded by count and age.
//
// Batches are started in the order they were pushed, at most Concurrency at a
// time. With Concurrency 1 they are also accepted in that order; with more,
// batches in flight at the same time may land in any order. When an attempt
// fails, no new batch is started until that batch's backoff delay has passed
// (one shared pause), so a failing receiver is not hammered by the other
// workers and the failing batch keeps its place at the head of the line.
//
// Safe for concurrent use.
type Queue struct {
	s   Sender
	cfg QueueConfig
	log *slog.Logger

	sendCtx context.Context // canceled when Close gives up
	abort   context.CancelFunc
	done    chan struct{} // closed when every worker has returned

	mu         sync.Mutex
	cond       *sync.Cond // signalled on push, close and abort
	room       *sync.Cond // signalled when a batch leaves the ring, on close and abort (Push waiting, Wait)
	stalled    bool       // a Push's Wait ran out with no batch started since
	ring       ring
	held       []*Batch // batches taken by workers and not yet settled, per worker
	closed     bool
	aborted    bool
	pauseUntil time.Time        // monotonic wall clock: no new batch starts before this
	throttled  *throttle.Logger // credentials errors and transient failures, at most once per AuthLogEvery each
	stats      QueueStats
	// Done callbacks settled under mu, run by unlock after releasing it.
	pendingDone []doneCall

	closeOnce sync.Once
	closeErr  error
}

// NewQueue returns a running Queue that sends through s. Call Close to stop it.
func NewQueue(s Sender, cfg QueueConfig) *Queue {
	cfg.Name = cmp.Or(cfg.Name, "outlet")
	positive(&cfg.MaxBatches, DefaultMaxBatches)
	positive(&cfg.MaxAge, DefaultMaxAge)
	positive(&cfg.Concurrency, DefaultConcurrency)
	positive(&cfg.MinBackoff, DefaultMinBackoff)
	positive(&cfg.MaxBackoff, DefaultMaxBackoff)
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	positive(&cfg.AuthLogEvery, DefaultAuthLogEvery)
	positive(&cfg.MaxRetryAfter, DefaultMaxRetryAfter)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Backoff == nil {
		minB, maxB := cfg.MinBackoff, cfg.MaxBackoff
		cfg.Backoff = func(attempt int) time.Duration { return backoff.EqualJitter(minB, maxB, attempt) }
	}
	q := &Queue{
		s:    s,
		cfg:  cfg,
		log:  cfg.Logger.With("outlet", cfg.Name),
		done: make(chan struct{}),
		ring: ring{buf: make([]Batch, cfg.MaxBatches)},
		held: make([]*Batch, cfg.Concurrency),
	}
	q.cond = sync.NewCond(&q.mu)
	q.room = sync.NewCond(&q.mu)
	q.throttled = throttle.New(q.log, cfg.AuthLogEvery, cfg.Now)
	q.sendCtx, q.abort = context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range cfg.Concurrency {
		wg.Go(func() { q.work(i) })
	}
	go func() {
		wg.Wait()
		close(q.done)
	}()
	return q
}

// positive sets *v to def unless it is positive.
func positive[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Push queues b. When the queue is full the oldest batch is dropped (counted and logged).
// A batch older than MaxAge, or pushed after Close, is dropped at once.
func (q *Queue) Push(b Batch) {
	q.mu.Lock()
	defer q.unlock()
	if !q.closed && !q.expiredLocked(&b) && q.ring.len() == len(q.ring.buf) && q.cfg.Wait > 0 && !q.stalled {
		q.waitRoomLocked()
	}
	switch {
	case q.closed:
		q.dropLocked(&b, reasonShutdown, nil)
	case q.expiredLocked(&b): // also when it aged while waiting for room
		q.dropLocked(&b, reasonExpired, nil)
	default:
		if q.ring.len() == len(q.ring.buf) {
			old := q.ring.pop()
			q.dropLocked(&old, reasonFull, nil)
		}
		q.ring.push(b)
		q.cond.Signal()
	}
}

// waitRoomLocked waits, with q.mu held, until the ring has room, the queue
// closes or aborts, or Wait passes (then the queue counts as stalled until
// a batch starts).
func (q *Queue) waitRoomLocked() {
	q.stats.PushWaits++
	expired := false
	t := time.AfterFunc(q.cfg.Wait, func() {
		q.mu.Lock()
		expired = true
		q.room.Broadcast()
		q.mu.Unlock()
	})
	defer t.Stop()
	for q.ring.len() == len(q.ring.buf) && !q.closed && !q.aborted && !expired {
		q.room.Wait()
	}
	if q.ring.len() == len(q.ring.buf) && expired {
		q.stalled = true
	}
}

// Close stops accepting batches and keeps sending until the queue is empty or ctx
// ends; what is left then is dropped, counted, and reported in the error.
// The error wraps ErrUndelivered. Close waits for in-flight sends to return,
// which they do promptly because their context is canceled. Calling Close again
// returns the first call's result.
func (q *Queue) Close(ctx context.Context) error {
	q.closeOnce.Do(func() { q.closeErr = q.close(ctx) })
	return q.closeErr
}

func (q *Queue) close(ctx context.Context) error {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.room.Broadcast()
	q.unlock()

	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
	}
	q.mu.Lock()
	q.aborted = true
	q.cond.Broadcast()
	q.room.Broadcast()
	q.unlock()
	q.abort()
	<-q.done

	q.mu.Lock()
	defer q.unlock()
	var n, m int
	for q.ring.len() > 0 {
		b := q.ring.pop()
		n, m = n+1, m+b.N
		q.dropLocked(&b, reasonShutdown, ctx.Err())
	}
	for i, b := range q.held {
		if b != nil {
			n, m = n+1, m+b.N
			q.dropLocked(b, reasonShutdown, ctx.Err())
			q.held[i] = nil
		}
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%s: close: %d batches (%d measurements) dropped: %w: %w", q.cfg.Name, n, m, ErrUndelivered, ctx.Err())
}

// Stats returns the queue's counters. Safe for concurrent use.
func (q *Queue) Stats() QueueStats {
	q.mu.Lock()
	defer q.unlock()
	s := q.stats
	s.Depth = q.ring.len()
	for _, b := range q.held {
		if b != nil {
			s.Depth++
		}
	}
	return s
}

// work is one sender goroutine: it takes the oldest batch and sends it until it
// is accepted, refused for good, too old, or the queue is aborted.
func (q *Queue) work(id int) {
	var b Batch
	for q.next(id, &b) {
		q.deliver(id, &b)
	}
}

// next waits for a batch to send and moves it into b and q.held[id]. It
// returns false when the worker should stop: aborted, or closed and empty.
func (q *Queue) next(id int, b *Batch) bool {
	q.mu.Lock()
	defer q.unlock()
	for {
		if q.aborted {
			return false
		}
		if q.ring.len() == 0 {
			if q.closed {
				return false
			}
			q.cond.Wait()
			continue
		}
		if wait := time.Until(q.pauseUntil); wait > 0 {
			q.unlock()
			ok := q.sleep(wait)
			q.mu.Lock()
			if !ok {
				return false
			}
			continue
		}
		*b = q.ring.pop()
		q.stalled = false
		q.room.Signal()
		if q.expiredLocked(b) {
			q.dropLocked(b, reasonExpired, nil)
			q.unlock() // run its Done before waiting again
			q.mu.Lock()
			continue
		}
		q.held[id] = b
		return true
	}
}

// deliver sends b until it is settled. It clears q.held[id] when it is, and
// leaves it set when the queue was aborted, for Close to count.
func (q *Queue) deliver(id int, b *Batch) {
	for attempt := 1; ; attempt++ {
		if b.Valid != nil && !b.Valid() {
			q.mu.Lock()
			q.held[id] = nil
			q.settledLocked(b, fmt.Errorf("%s: %w", q.cfg.Name, ErrWithdrawn))
			q.unlock()
			return
		}
		start := time.Now()
		err := q.s.Send(q.sendCtx, b)
		latency := time.Since(start)

		q.mu.Lock()
		if err == nil || q.aborted { // aborted: Close counts the held batch, unless accepted after all
			if err == nil {
				q.stats.Sent++
				q.stats.SentMeasurements += int64(b.N)
				q.stats.LastLatency = latency
				q.held[id] = nil
				q.settledLocked(b, nil)
			}
			q.unlock()
			return
		}
		q.stats.Failed++
		switch {
		case errors.Is(err, ErrPermanent):
			q.dropLocked(b, reasonPermanent, err)
			q.held[id] = nil
			q.unlock()
			return
		case errors.Is(err, ErrUnauthorized):
			q.stats.Unauthorized++
			q.throttled.Error("credentials refused; keeping data and retrying (check the token and user)",
				"err", err, "depth", q.ring.len()+1)
		default:
			q.throttled.Warn("send failed; retrying", "err", err, "attempt", attempt, "depth", q.ring.len()+1)
		}
		wait := q.cfg.Backoff(attempt)
		if ra := (*RetryAfterError)(nil); errors.As(err, &ra) {
			wait = max(wait, min(ra.Delay, q.cfg.MaxRetryAfter))
		}
		if until := time.Now().Add(wait); until.After(q.pauseUntil) {
			q.pauseUntil = until
		}
		q.unlock()

		if !q.sleep(wait) {
			return // aborted: Close counts the held batch
		}
		q.mu.Lock()
		if q.expiredLocked(b) {
			q.dropLocked(b, reasonExpired, err)
			q.held[id] = nil
			q.unlock()
			return
		}
		q.unlock()
	}
}

// settledLocked arranges for b.Done to be called with err once the lock is
// released: Done callbacks may take locks of their own.
func (q *Queue) settledLocked(b *Batch, err error) {
	if b.Done != nil {
		q.pendingDone = append(q.pendingDone, doneCall{b.Done, err})
		b.Done = nil
	}
}

// unlock releases q.mu and then runs the Done callbacks settled under it.
func (q *Queue) unlock() {
	calls := q.pendingDone
	q.pendingDone = nil
	q.mu.Unlock()
	for _, c := range calls {
		c.f(c.err)
	}
}

type doneCall struct {
	f   func(error)
	err error
}

// sleep waits d, or until the queue is aborted (then it returns false).
func (q *Queue) sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return q.sendCtx.Err() == nil
	case <-q.sendCtx.Done():
		return false
	}
}

func (q *Queue) expiredLocked(b *Batch) bool {
	return !b.Time.IsZero() && q.cfg.Now().Sub(b.Time) > q.cfg.MaxAge
}

// dropLocked counts and logs one dropped batch. err, if any, is the last send
// error (Senders never put credentials in errors).
func (q *Queue) dropLocked(b *Batch, reason string, err error) {
	q.stats.Dropped++
	q.stats.DroppedMeasurements += int64(b.N)
	switch reason {
	case reasonFull:
		q.stats.DroppedFull++
	case reasonExpired:
		q.stats.DroppedExpired++
	case reasonPermanent:
		q.stats.DroppedPermanent++
	case reasonShutdown:
		q.stats.DroppedShutdown++
	}
	attrs := []any{"reason", reason, "measurements", b.N, "batch_time", b.Time}
	derr := fmt.Errorf("%s: %w: %s", q.cfg.Name, ErrDropped, reason)
	if err != nil {
		attrs = append(attrs, "err", err)
		derr = fmt.Errorf("%w: %w", derr, err)
	}
	q.log.Warn("batch dropped", attrs...)
	q.settledLocked(b, derr)
}

// ring is a fixed-capacity FIFO of batches. Not safe for concurrent use.
type ring struct {
	buf  []Batch
	head int // index of the oldest batch
	n    int
}

func (r *ring) len() int { return r.n }

func (r *ring) push(b Batch) {
	r.buf[(r.head+r.n)%len(r.buf)] = b
	r.n++
}

func (r *ring) pop() Batch {
	b := r.buf[r.head]
	r.buf[r.head] = Batch{} // release the body
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return b
}
