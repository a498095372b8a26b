package input

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxConns bounds the concurrent connections of a listener (the syslog
// listener's; the HTTP drain has its own, drain.DefaultMaxConns) when no other
// bound is configured. Logplex opens a few connections per drain, so 64
// leaves ample room while bounding the memory of frames being read at once.
const DefaultMaxConns = 64

// LimitListener is a net.Listener that keeps at most a fixed number of
// accepted connections open: when the limit is reached, Accept waits until a
// connection closes, and new connections wait in the kernel's backlog. It is
// golang.org/x/net/netutil.LimitListener plus the counters the worker exports
// (that package exposes none). Safe for concurrent use.
type LimitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	accepted, saturated atomic.Uint64
	active              atomic.Int64
	waiting             atomic.Int32

	onWait func()        // OnWait
	every  time.Duration // OnWait
}

// ListenerStats are the cumulative counters of a LimitListener.
type ListenerStats struct {
	Accepted  uint64 `metric:"-"`              // connections accepted
	Saturated uint64 `metric:"saturated,drop"` // times Accept had to wait because the limit was reached
	Active    int    `metric:"-"`              // connections open now
}

// NewLimitListener wraps l so that at most n connections are open at once;
// n <= 0 means DefaultMaxConns.
func NewLimitListener(l net.Listener, n int) *LimitListener {
	if n <= 0 {
		n = DefaultMaxConns
	}
	return &LimitListener{Listener: l, sem: make(chan struct{}, n), done: make(chan struct{})}
}

// Accept waits until fewer than the limit of connections are open, then
// accepts the next one.
func (l *LimitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	default:
		l.saturated.Add(1)
		if !l.wait() {
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	l.accepted.Add(1)
	l.active.Add(1)
	return &limitConn{Conn: c, release: func() { l.active.Add(-1); <-l.sem }}, nil
}

// OnWait sets a function that Accept calls when it starts waiting for a free
// slot, and every `every` after that for as long as an Accept waits, e.g. to
// close idle keep-alive connections. Set it before the first Accept; fn must
// not block.
func (l *LimitListener) OnWait(every time.Duration, fn func()) { l.every, l.onWait = every, fn }

// wait waits for a free slot, calling onWait now and every l.every, and
// reports whether it got one (false: the listener was closed).
func (l *LimitListener) wait() bool {
	l.waiting.Add(1)
	defer l.waiting.Add(-1)
	var tick <-chan time.Time
	if l.onWait != nil {
		l.onWait()
		t := time.NewTicker(l.every)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case l.sem <- struct{}{}:
			return true
		case <-tick:
			l.onWait()
		case <-l.done:
			return false
		}
	}
}

// Waiting reports whether an Accept is waiting for a free slot.
func (l *LimitListener) Waiting() bool { return l.waiting.Load() > 0 }

// Limit returns the maximum number of open connections.
func (l *LimitListener) Limit() int { return cap(l.sem) }

// Close closes the listener; an Accept waiting for a free slot returns
// net.ErrClosed.
func (l *LimitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Stats returns the cumulative counters and the number of open connections.
func (l *LimitListener) Stats() ListenerStats {
	return ListenerStats{Accepted: l.accepted.Load(), Saturated: l.saturated.Load(), Active: int(l.active.Load())}
}

// Wait waits for wg until ctx ends, and then returns ctx.Err(): an input's
// Close waiting for its goroutines.
func Wait(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
