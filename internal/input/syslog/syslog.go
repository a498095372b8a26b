package syslog

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynometrics/dynometrics/internal/input"
)

// Timeouts: the defaults for the zero fields of Config, and two fixed ones
// (DefaultHandshakeTimeout, DefaultReclaimIdle).
const (
	// DefaultIdleTimeout closes a connection that sent nothing for this long.
	DefaultIdleTimeout = 5 * time.Minute
	// DefaultHandshakeTimeout bounds a TLS handshake.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultFirstByteTimeout closes a connection that sent nothing this long
	// after it was accepted (after its TLS handshake): a sender writes as soon
	// as it connects, so a silent connection only holds a slot.
	DefaultFirstByteTimeout = 10 * time.Second
	// DefaultReclaimIdle: while a new connection waits for a slot (MaxConns
	// open), connections that received nothing for this long are closed to
	// make room, as the HTTPS drain closes idle keep-alive connections. Their
	// senders reconnect when they next have something to send.
	DefaultReclaimIdle = 2 * time.Second
	// reclaimEvery is how often the connections are checked while one waits.
	reclaimEvery = 100 * time.Millisecond
)

// Config configures a Server. The zero value of every numeric field means its
// documented default.
type Config struct {
	// Addr is the TCP address ListenAndServe listens on, e.g. ":6514".
	Addr string
	// TLSCertFile and TLSKeyFile are PEM file paths; when both are set the
	// listener speaks TLS (1.2 or later). Setting only one is an error.
	TLSCertFile, TLSKeyFile string

	MaxConns         int           // concurrent connections; 0 means input.DefaultMaxConns
	IdleTimeout      time.Duration // 0 means DefaultIdleTimeout
	FirstByteTimeout time.Duration // 0 means DefaultFirstByteTimeout

	// Logger receives connection errors; nil means slog.Default().
	Logger *slog.Logger
}

// Stats are the cumulative counters of a Server (Active is a current value).
type Stats struct {
	Accepted        uint64 `metric:"connections"`           // connections accepted
	Saturated       uint64 `metric:"saturated,drop"`        // times Accept waited because MaxConns connections were open
	Active          int    `metric:"active,gauge"`          // connections open now
	IdleTimeouts    uint64 `metric:"idle_timeouts,drop"`    // connections closed after IdleTimeout without data
	SilentClosed    uint64 `metric:"silent_closed,drop"`    // connections closed because they sent nothing within FirstByteTimeout
	Reclaimed       uint64 `metric:"reclaimed,drop"`        // connections closed after DefaultReclaimIdle without data, to make room for a waiting one
	HandshakeErrors uint64 `metric:"handshake_errors,drop"` // TLS handshakes that failed or timed out
	ReadErrors      uint64 `metric:"read_errors,drop"`      // connections that ended with a read error
}

// Server is a syslog listener. Safe for concurrent use.
type Server struct {
	p   *input.Processor
	cfg Config
	log *slog.Logger
	tls *tls.Config

	mu      sync.Mutex
	ln      atomic.Pointer[input.LimitListener] // set by Serve under mu
	conns   map[net.Conn]*connState
	wg      sync.WaitGroup
	closing atomic.Bool // set under mu; readers check it so as not to re-arm their deadline

	idle, silent, reclaimed, handshake, readErrs atomic.Uint64
}

// connState is what the reclaim loop knows of a connection.
type connState struct {
	last      atomic.Int64 // unix nanoseconds of the last data received, or of the accept
	reclaimed atomic.Bool  // closed by the reclaim loop: its read error is expected
}

// ErrServerClosed is returned by Serve and ListenAndServe after Close.
var ErrServerClosed = errors.New("syslog: server closed")

// New returns a Server that feeds p. It loads the TLS certificate when
// configured.
func New(p *input.Processor, cfg Config) (*Server, error) {
	if p == nil {
		return nil, errors.New("syslog: nil Processor")
	}
	if cfg.MaxConns < 0 || cfg.IdleTimeout < 0 || cfg.FirstByteTimeout < 0 {
		return nil, errors.New("syslog: negative bound in Config")
	}
	cfg.MaxConns = cmp.Or(cfg.MaxConns, input.DefaultMaxConns)
	cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, DefaultIdleTimeout)
	cfg.FirstByteTimeout = cmp.Or(cfg.FirstByteTimeout, DefaultFirstByteTimeout)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	s := &Server{p: p, cfg: cfg, log: cfg.Logger, conns: make(map[net.Conn]*connState)}
	switch {
	case cfg.TLSCertFile != "" && cfg.TLSKeyFile != "":
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			// The error names the files, never their contents.
			return nil, fmt.Errorf("syslog: loading TLS certificate %s and key %s: %w", cfg.TLSCertFile, cfg.TLSKeyFile, unwrapPathError(err))
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	case cfg.TLSCertFile != "" || cfg.TLSKeyFile != "":
		return nil, errors.New("syslog: TLS needs both a certificate and a key file")
	}
	return s, nil
}

func unwrapPathError(err error) error {
	if pe, ok := errors.AsType[*os.PathError](err); ok {
		return pe.Err
	}
	return err
}

// TLS reports whether the Server speaks TLS.
func (s *Server) TLS() bool { return s.tls != nil }

// ListenAndServe listens on Config.Addr and serves until Close.
func (s *Server) ListenAndServe() error {
	if s.cfg.Addr == "" {
		return errors.New("syslog: empty Addr")
	}
	l, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("syslog: %w", err)
	}
	return s.Serve(l)
}

// Serve accepts connections on l (bounded by MaxConns) and reads each in its
// own goroutine until Close; it then returns ErrServerClosed. Serve takes
// ownership of l.
func (s *Server) Serve(l net.Listener) error {
	ll := input.NewLimitListener(l, s.cfg.MaxConns)
	ll.OnWait(reclaimEvery, s.reclaim)
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		_ = l.Close()
		return ErrServerClosed
	}
	s.ln.Store(ll)
	s.mu.Unlock()
	var delay time.Duration
	for {
		c, err := ll.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				// Temporary accept failure (e.g. too many open files): wait a
				// little, as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("syslog: accept: %w", err)
		}
		delay = 0
		cs := s.track(c)
		if cs == nil {
			_ = c.Close()
			return ErrServerClosed
		}
		go s.serveConn(c, cs)
	}
}

// track registers c for Close and the reclaim loop; nil when the Server is
// closing.
func (s *Server) track(c net.Conn) *connState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return nil
	}
	cs := &connState{}
	cs.last.Store(time.Now().UnixNano())
	s.conns[c] = cs
	s.wg.Add(1)
	return cs
}

// reclaim closes the connections idle for DefaultReclaimIdle; the listener calls
// it every reclaimEvery while a connection waits for a slot.
func (s *Server) reclaim() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return
	}
	idleSince := time.Now().Add(-DefaultReclaimIdle).UnixNano()
	for c, cs := range s.conns {
		if cs.last.Load() <= idleSince && !cs.reclaimed.Swap(true) {
			s.reclaimed.Add(1)
			_ = c.Close()
		}
	}
}

func (s *Server) serveConn(c net.Conn, cs *connState) {
	defer s.wg.Done()
	defer func() {
		_ = c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	var r io.Reader = c
	if s.tls != nil {
		tc := tls.Server(c, s.tls)
		ctx, cancel := context.WithTimeout(context.Background(), DefaultHandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			if cs.reclaimed.Load() {
				return // counted by the reclaim loop
			}
			s.handshake.Add(1)
			s.log.Debug("syslog: TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
			return
		}
		r = tc
	}
	ir := &idleReader{r: r, c: c, idle: s.cfg.IdleTimeout, first: s.cfg.FirstByteTimeout, stop: &s.closing, state: cs}
	err := s.p.ReadFrames(context.Background(), ir)
	if err == nil {
		return
	}
	var ne net.Error
	switch {
	case s.closing.Load():
		// Close set a past deadline to end the read.
	case cs.reclaimed.Load():
		// Counted by the reclaim loop.
	case errors.As(err, &ne) && ne.Timeout() && !ir.got:
		s.silent.Add(1)
	case errors.As(err, &ne) && ne.Timeout():
		s.idle.Add(1)
	default:
		s.readErrs.Add(1)
		s.log.Warn("syslog: connection read failed", "remote", c.RemoteAddr().String(), "err", err)
	}
}

// idleReader sets the connection's read deadline before each read: the
// first-byte timeout until data arrived, the idle timeout afterwards. It
// records when data last arrived, for the reclaim loop.
type idleReader struct {
	r           io.Reader
	c           net.Conn
	idle, first time.Duration
	last        time.Time // when the deadline was last armed
	got         bool      // data arrived
	stop        *atomic.Bool
	state       *connState
}

func (ir *idleReader) Read(b []byte) (int, error) {
	// Re-arming the deadline costs a timer update; do it at most once a second.
	now := time.Now()
	if now.Sub(ir.last) > time.Second {
		ir.last = now
		d := ir.idle
		if !ir.got {
			d = ir.first
		}
		if err := ir.c.SetReadDeadline(now.Add(d)); err != nil {
			return 0, err
		}
		// Close stores closing before it sets a past deadline: re-checking after
		// re-arming guarantees the past deadline wins.
		if ir.stop.Load() {
			_ = ir.c.SetReadDeadline(now)
		}
	}
	n, err := ir.r.Read(b)
	if n > 0 {
		ir.state.last.Store(time.Now().UnixNano())
		if !ir.got {
			ir.got = true
			ir.last = time.Time{} // re-arm with the idle timeout at the next read
		}
	}
	return n, err
}

// Close stops accepting connections and ends the reads of open ones: what
// they already received is parsed and reaches the Sink. It waits for their
// goroutines until ctx ends.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	var err error
	if ln := s.ln.Load(); ln != nil {
		err = ln.Close()
	}
	for c := range s.conns {
		_ = c.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	if err := input.Wait(ctx, &s.wg); err != nil {
		return fmt.Errorf("syslog: close: connections still open: %w", err)
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("syslog: close: %w", err)
	}
	return nil
}

// Stats returns the cumulative counters. Safe for concurrent use.
func (s *Server) Stats() Stats {
	st := Stats{IdleTimeouts: s.idle.Load(), SilentClosed: s.silent.Load(), Reclaimed: s.reclaimed.Load(),
		HandshakeErrors: s.handshake.Load(), ReadErrors: s.readErrs.Load()}
	if ln := s.ln.Load(); ln != nil {
		ls := ln.Stats()
		st.Accepted, st.Saturated, st.Active = ls.Accepted, ls.Saturated, ls.Active
	}
	return st
}
