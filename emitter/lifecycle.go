package emitter

import (
	"context"
	"errors"
	"sync"
	"time"
)

// background is the state of Start and Stop.
type background struct {
	mu     sync.Mutex
	cancel context.CancelFunc // set by Start
	done   chan struct{}
	err    error
}

// Start runs Run in a new goroutine: the Emitter emits every Interval until
// Stop. Call Stop before the program exits, after the application stopped
// counting (for a web server: after http.Server.Shutdown returned), so the
// final emission holds everything; a `defer em.Stop()` right after Start in
// main does that. Start returns at once; calling it twice, or after Run, does
// nothing more (Stop then reports the error).
//
//	em.Start()
//	defer em.Stop() // runs when main returns: emits once more and waits for it
func (e *Emitter) Start() {
	e.bg.mu.Lock()
	defer e.bg.mu.Unlock()
	if e.bg.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.bg.cancel, e.bg.done = cancel, make(chan struct{})
	go func() {
		defer close(e.bg.done)
		e.bg.err = e.Run(ctx)
	}()
}

// Stop ends what Start began and returns only when the final emission has
// been written (and the statsd listener, if any, has been read to the end and
// closed), with that emission's error. Stop is safe to call more than once;
// later calls return the same error at once. Without Start it releases the
// statsd socket like Close and returns nil.
func (e *Emitter) Stop() error {
	e.bg.mu.Lock()
	cancel, done := e.bg.cancel, e.bg.done
	e.bg.mu.Unlock()
	if cancel == nil {
		return e.Close()
	}
	cancel()
	<-done
	return e.bg.err
}

// AlignLead is how long before each wall-clock multiple of the interval
// AlignedTicker ticks: a twentieth of the interval, at most one second. A line
// written then reaches the log router, which stamps it, before the boundary,
// so it lands in the worker's bucket that the emission describes (whenever
// EMITTER_INTERVAL is a multiple of the worker's METRICS_RESOLUTION, or equal
// to it).
func AlignLead(d time.Duration) time.Duration {
	return min(d/20, time.Second)
}

// AlignedTicker is the default Config.NewTicker: it ticks at every
// wall-clock multiple of d since the Unix epoch, less AlignLead(d) (for d =
// 60s at hh:mm:59), until stop is called. Ticks are dropped, not queued, when
// the receiver is late, as with time.Ticker.
func AlignedTicker(d time.Duration) (ticks <-chan time.Time, stop func()) {
	return alignedTicker(d, time.Now)
}

func alignedTicker(d time.Duration, now func() time.Time) (<-chan time.Time, func()) {
	if d <= 0 {
		panic(errors.New("emitter: non-positive interval for AlignedTicker"))
	}
	c := make(chan time.Time, 1)
	ctx, stop := context.WithCancel(context.Background())
	lead := AlignLead(d)
	go func() {
		t := time.NewTimer(untilNextTick(now(), d, lead))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case at := <-t.C:
				select {
				case c <- at:
				default:
				}
				t.Reset(untilNextTick(now(), d, lead))
			}
		}
	}()
	return c, stop
}

// untilNextTick returns the time from t to the next instant k·d − lead
// after t, k an integer, counting from the Unix epoch.
func untilNextTick(t time.Time, d, lead time.Duration) time.Duration {
	shifted := t.UnixNano() + int64(lead)
	next := (shifted/int64(d) + 1) * int64(d)
	return time.Duration(next - shifted)
}
