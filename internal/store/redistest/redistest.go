// Package redistest starts a real redis-server for tests, on 127.0.0.1 with
// no persistence, and stops it when the test ends.
//
//	srv := redistest.Start(t) // skips when no redis-server (fails when CI=true)
//	// … connect to srv.URL (redis://127.0.0.1:PORT/0) …
//	srv.Pause()               // SIGSTOP: connections hang, as with a stuck server
//	srv.Resume()
//
// The binary is $REDIS_SERVER_BIN, else "redis-server" on $PATH, else
// /usr/bin/redis-server (Debian: apt-get install redis-server).
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/testproc"
	"github.com/redis/go-redis/v9"
)

// Bounds of the harness.
const (
	// ReadyTimeout is how long Start waits for the server to answer PING.
	ReadyTimeout = 20 * time.Second
	// StopTimeout is how long Cleanup waits after SIGTERM before SIGKILL.
	StopTimeout   = 10 * time.Second
	startAttempts = 3
)

// Server is a running redis-server. Safe for concurrent use.
type Server struct {
	Addr string // 127.0.0.1:PORT
	URL  string // redis://127.0.0.1:PORT/0

	proc  *testproc.Proc
	port  int
	bin   string
	dir   string
	extra []string // more redis-server arguments (a cluster node's)

	mu       sync.Mutex
	password string // Do authenticates with it when set (RequirePass)
}

// Binary returns the path of redis-server ($REDIS_SERVER_BIN, PATH,
// /usr/bin), or "" when none is found.
func Binary() string { return testproc.Find("REDIS_SERVER_BIN", "redis-server") }

// Start runs redis-server on a free 127.0.0.1 port without persistence,
// waits until it answers PING, and stops it in t.Cleanup. Without a binary it
// skips the test, unless CI=true, where it fails it.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		testproc.Missing(t, "redistest: no redis-server binary (apt-get install redis-server, or set REDIS_SERVER_BIN)")
		return nil
	}
	var lastErr error
	for range startAttempts {
		s, err := start(bin, t.TempDir(), "/0")
		if err == nil {
			s.stopAtEnd(t)
			return s
		}
		lastErr = err
	}
	t.Fatalf("redistest: start %s: %v", bin, lastErr)
	return nil
}

// start runs redis-server on a free port of 127.0.0.1 (URL: redis://addr
// then path) and waits until it answers PING; a server that did not start
// is stopped already.
func start(bin, dir, path string, extra ...string) (*Server, error) {
	port, err := testproc.FreePort()
	if err != nil {
		return nil, fmt.Errorf("pick a port: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := &Server{Addr: addr, URL: "redis://" + addr + path, port: port, bin: bin, dir: dir, extra: extra}
	return s, s.run()
}

// run starts the process on s.Addr and waits until it answers PING.
func (s *Server) run() error {
	p, err := testproc.RunRedis(context.Background(), s.bin, s.dir, s.port, ReadyTimeout, append([]string{"--loglevel", "warning"}, s.extra...)...)
	if err == nil {
		s.proc = p
	}
	return err
}

// Restart stops the server (SIGTERM) and starts it again on the same
// address. Without persistence it comes back empty, as a Redis restarted
// without its data, and without a password (RequirePass is forgotten).
func (s *Server) Restart() error {
	s.mu.Lock()
	s.password = ""
	s.mu.Unlock()
	if err := s.stop(); err != nil {
		return err
	}
	return s.run()
}

// Do sends one command over a fresh connection (authenticated with the
// RequirePass password, when set) and returns its reply as text: a status,
// an integer, a bulk string, "" for nil. Enough for the harness and for
// INFO fields.
func (s *Server) Do(args ...string) (string, error) {
	s.mu.Lock()
	pass := s.password
	s.mu.Unlock()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, Password: pass, Protocol: 2, DisableIdentity: true,
		MaxRetries: -1, PoolSize: 1, DialTimeout: time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
	defer c.Close()
	cmd := make([]any, len(args))
	for i, a := range args {
		cmd[i] = a
	}
	v, err := c.Do(context.Background(), cmd...).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("redis: %w", err)
	}
	return fmt.Sprint(v), nil
}

// RequirePass sets the server's password (CONFIG SET requirepass; ""
// removes it) and closes every other client connection, as a provider
// rotating the credentials does: clients must authenticate again. Later Do
// calls authenticate with the new password.
func (s *Server) RequirePass(password string) error {
	if _, err := s.Do("CONFIG", "SET", "requirepass", password); err != nil {
		return err
	}
	s.mu.Lock()
	s.password = password
	s.mu.Unlock()
	_, err := s.Do("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
	return err
}

// Info returns one numeric field of INFO (e.g. "used_memory").
func (s *Server) Info(field string) (int64, error) {
	text, err := s.Do("INFO", "all")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(text, "\r\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("INFO has no %s", field)
}

// Pause stops the server process (SIGSTOP): it keeps its data, and clients
// time out as with a stuck or unreachable server, until Resume.
func (s *Server) Pause() error { return s.proc.Cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() error { return s.proc.Cmd.Process.Signal(syscall.SIGCONT) }

// stopAtEnd stops the server when t ends, and logs its output when t
// failed.
func (s *Server) stopAtEnd(t testing.TB) {
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("redistest: stop %s: %v", s.Addr, err)
		}
		if t.Failed() {
			t.Logf("redistest: redis-server %s output:\n%s", s.Addr, s.proc.Log.String())
		}
	})
}

func (s *Server) stop() error {
	_ = s.Resume()
	return s.proc.Stop(syscall.SIGTERM, StopTimeout)
}
