package drain

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynometrics/dynometrics/internal/input"
)

// Server timeouts and bounds. Logplex gives up on a request after 5 s, so
// slow clients are cut off rather than allowed to hold connections.
const (
	ReadHeaderTimeout = 5 * time.Second
	// BodyTimeout bounds the reading of one request's body, from the moment
	// its headers are read, whatever its declared size: Logplex gives up on
	// a request after 5 s and retries it, and a client with valid
	// credentials that stalls its body holds a connection slot no longer.
	// A 4 MiB OTLP body needs 0.8 MB/s.
	BodyTimeout = 5 * time.Second
	// ReadTimeout bounds a request, headers and body (ReadHeaderTimeout
	// plus BodyTimeout).
	ReadTimeout    = ReadHeaderTimeout + BodyTimeout
	WriteTimeout   = 30 * time.Second
	IdleTimeout    = 2 * time.Minute
	MaxHeaderBytes = 16 << 10
	// DefaultMaxConns bounds the drain's open connections. It is above
	// input.DefaultMaxConns because a connection still sending its headers
	// costs little (MaxHeaderBytes, bufio buffers, a goroutine: ~20 KB), so
	// room for many makes a slow-header attack expensive; the memory of
	// bodies being read is bounded separately (Config.Budget).
	DefaultMaxConns = 256
	// SlowHeaderGrace: while a connection waits for a slot, connections that
	// have been sending the headers of their first request for longer than
	// this are closed (ServerStats.SlowClosed). A client sends its request
	// as soon as it connects; only a slow-header (slowloris) client is still
	// at it a second later.
	SlowHeaderGrace = time.Second
	// reclaimEvery is how often connections are checked while one waits.
	reclaimEvery = 100 * time.Millisecond
)

// Server is an http.Server for a drain Handler that bounds concurrent
// connections (input.LimitListener). Keep-alive connections would otherwise
// hold every slot while new connections wait unaccepted in the kernel's
// backlog until their clients time out. So while a connection waits for a
// slot, responses carry "Connection: close" (the client opens a new
// connection next time, and waits its turn), and idle keep-alive connections
// are closed (counted in ServerStats.IdleClosed), as nginx does, and so are
// connections still sending their first request's headers SlowHeaderGrace
// after they were accepted (ServerStats.SlowClosed): 300 slowloris
// connections cannot keep a legitimate POST out. A client
// that sent a request on an idle connection just as it was closed sees an
// error and retries; Logplex retries with the same Frame-Id, so the retry is
// not counted twice. Shutdown, Close and the other http.Server methods work as
// usual. Safe for concurrent use.
type Server struct {
	*http.Server
	maxConns    int
	bodyTimeout time.Duration // BodyTimeout; tests shorten it

	ll    atomic.Pointer[input.LimitListener] // set by Serve
	mu    sync.Mutex                          // guards idle and fresh
	idle  map[net.Conn]struct{}
	fresh map[net.Conn]time.Time // connections reading their first request's headers, by accept time

	idleClosed, slowClosed, headerTooLarge, badRequests atomic.Uint64
}

// ServerStats are the cumulative counters of a Server's listener.
type ServerStats struct {
	input.ListenerStats `metric:""`
	IdleClosed          uint64 `metric:"idle_closed,drop"`      // idle keep-alive connections closed to make room for a waiting one
	SlowClosed          uint64 `metric:"slow_closed,drop"`      // connections closed to make room: still sending headers SlowHeaderGrace after they were accepted
	HeaderTooLarge      uint64 `metric:"header_too_large,drop"` // requests answered 431 by net/http: headers over MaxHeaderBytes
	BadRequests         uint64 `metric:"bad_requests,drop"`     // requests answered 400 by net/http before the handler: malformed request line or headers
}

// NewServer returns a Server for h on addr (":8080") that keeps at most
// maxConns connections open (<= 0 means DefaultMaxConns).
func NewServer(addr string, h http.Handler, maxConns int) *Server {
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	s := &Server{maxConns: maxConns, bodyTimeout: BodyTimeout, idle: make(map[net.Conn]struct{}), fresh: make(map[net.Conn]time.Time)}
	s.Server = &http.Server{
		Addr: addr,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s.waiting() {
				w.Header().Set("Connection", "close")
			}
			serveCut(h, w, r, s.bodyTimeout)
		}),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ConnState:         s.connState,
	}
	return s
}

// ListenAndServe listens on the Server's Addr and serves until Shutdown or
// Close; it then returns http.ErrServerClosed.
func (s *Server) ListenAndServe() error {
	l, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

// Serve serves on l, bounded to maxConns connections. It returns
// http.ErrServerClosed after Shutdown or Close.
func (s *Server) Serve(l net.Listener) error {
	ll := input.NewLimitListener(l, s.maxConns)
	ll.OnWait(reclaimEvery, s.reclaim)
	if !s.ll.CompareAndSwap(nil, ll) {
		return errors.New("drain: Server.Serve called twice")
	}
	return s.Server.Serve(watchListener{ll, s})
}

// watchListener hands out connections that count the error responses
// net/http writes itself, before any handler runs.
type watchListener struct {
	*input.LimitListener
	s *Server
}

func (l watchListener) Accept() (net.Conn, error) {
	c, err := l.LimitListener.Accept()
	if err != nil {
		return nil, err
	}
	return &watchConn{Conn: c, s: l.s}, nil
}

type watchConn struct {
	net.Conn
	s *Server
}

// The responses net/http writes directly to the connection when a request
// cannot be read (server.go, conn.serve). Handler responses go through a
// buffered writer and carry other headers in sorted order (Content-Length,
// Content-Type, Date, X-Content-Type-Options), so they never start so.
var (
	resp431 = []byte("HTTP/1.1 431 ")
	resp400 = []byte("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n")
)

func (c *watchConn) Write(p []byte) (int, error) {
	if len(p) >= len(resp431) && p[9] == '4' {
		switch {
		case bytes.HasPrefix(p, resp431):
			c.s.headerTooLarge.Add(1)
		case bytes.HasPrefix(p, resp400):
			c.s.badRequests.Add(1)
		}
	}
	return c.Conn.Write(p)
}

func (s *Server) waiting() bool {
	ll := s.ll.Load()
	return ll != nil && ll.Waiting()
}

// connState tracks idle connections and those reading their first
// request's headers; a connection that becomes idle while another waits for a
// slot is closed at once.
func (s *Server) connState(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st == http.StateNew {
		s.fresh[c] = time.Now()
		return
	}
	delete(s.fresh, c)
	if st != http.StateIdle {
		delete(s.idle, c)
		return
	}
	if s.waiting() {
		s.idleClosed.Add(1)
		_ = c.Close()
		return
	}
	s.idle[c] = struct{}{}
}

// reclaim closes the idle connections and those accepted more than
// SlowHeaderGrace ago that are still reading their first request's headers;
// the listener calls it every reclaimEvery while a connection waits for a
// slot.
func (s *Server) reclaim() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for c := range s.idle {
		delete(s.idle, c)
		s.idleClosed.Add(1)
		_ = c.Close()
	}
	for c, accepted := range s.fresh {
		if now.Sub(accepted) >= SlowHeaderGrace {
			delete(s.fresh, c)
			s.slowClosed.Add(1)
			_ = c.Close()
		}
	}
}

// Shutdown stops the server as http.Server.Shutdown does, and also closes
// at once the connections that have not sent a byte of a request:
// net/http counts those as active for 5 s, so a client's spare keep-alive
// connection (or one that never writes) held every shutdown for as long.
// Nothing of theirs was read, so nothing is lost; a request cut off in its
// first bytes was never answered and is retried by Logplex.
func (s *Server) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			s.closeFresh()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return s.Server.Shutdown(ctx)
}

// closeFresh closes the connections that have read nothing yet.
func (s *Server) closeFresh() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.fresh {
		delete(s.fresh, c)
		_ = c.Close()
	}
}

// Stats returns the listener's counters (zero before Serve).
func (s *Server) Stats() ServerStats {
	st := ServerStats{IdleClosed: s.idleClosed.Load(), SlowClosed: s.slowClosed.Load(),
		HeaderTooLarge: s.headerTooLarge.Load(), BadRequests: s.badRequests.Load()}
	if ll := s.ll.Load(); ll != nil {
		st.ListenerStats = ll.Stats()
	}
	return st
}
