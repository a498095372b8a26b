package drain

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynometrics/dynometrics/internal/input"
)

// Server timeouts. Logplex gives up on a request after 5 s, so slow clients
// are cut off rather than allowed to hold connections.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 2 * time.Minute
	MaxHeaderBytes    = 16 << 10
)

// Server is an http.Server for a drain Handler that bounds concurrent
// connections (input.LimitListener). Keep-alive connections would otherwise
// hold every slot while new connections wait unaccepted in the kernel's
// backlog until their clients time out. So while a connection waits for a
// slot, responses carry "Connection: close" (the client opens a new
// connection next time, and waits its turn), and idle keep-alive connections
// are closed (counted in ServerStats.IdleClosed), as nginx does. A client
// that sent a request on an idle connection just as it was closed sees an
// error and retries; Logplex retries with the same Frame-Id, so the retry is
// not counted twice. Shutdown, Close and the other http.Server methods work as
// usual. Safe for concurrent use.
type Server struct {
	*http.Server
	maxConns int

	mu   sync.Mutex
	ll   *input.LimitListener
	idle map[net.Conn]struct{}

	idleClosed atomic.Uint64
}

// ServerStats are the cumulative counters of a Server's listener.
type ServerStats struct {
	input.ListenerStats
	IdleClosed uint64 // idle keep-alive connections closed to make room for a waiting one
}

// NewServer returns a Server for h on addr (":8080") that keeps at most
// maxConns connections open (<= 0 means input.DefaultMaxConns).
func NewServer(addr string, h http.Handler, maxConns int) *Server {
	s := &Server{maxConns: maxConns, idle: make(map[net.Conn]struct{})}
	s.Server = &http.Server{
		Addr: addr,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s.waiting() {
				w.Header().Set("Connection", "close")
			}
			h.ServeHTTP(w, r)
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
	ll.OnWait(s.closeIdle)
	s.mu.Lock()
	if s.ll != nil {
		s.mu.Unlock()
		return errors.New("drain: Server.Serve called twice")
	}
	s.ll = ll
	s.mu.Unlock()
	return s.Server.Serve(ll)
}

func (s *Server) waiting() bool {
	s.mu.Lock()
	ll := s.ll
	s.mu.Unlock()
	return ll != nil && ll.Waiting()
}

// connState tracks idle connections; a connection that becomes idle while
// another waits for a slot is closed at once.
func (s *Server) connState(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st != http.StateIdle {
		delete(s.idle, c)
		return
	}
	if s.ll != nil && s.ll.Waiting() {
		s.idleClosed.Add(1)
		_ = c.Close()
		return
	}
	s.idle[c] = struct{}{}
}

// closeIdle closes the idle keep-alive connections.
func (s *Server) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.idle {
		delete(s.idle, c)
		s.idleClosed.Add(1)
		_ = c.Close()
	}
}

// Stats returns the listener's counters (zero before Serve).
func (s *Server) Stats() ServerStats {
	s.mu.Lock()
	ll := s.ll
	s.mu.Unlock()
	st := ServerStats{IdleClosed: s.idleClosed.Load()}
	if ll != nil {
		st.ListenerStats = ll.Stats()
	}
	return st
}
