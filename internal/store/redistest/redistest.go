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
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bounds of the harness.
const (
	// ReadyTimeout is how long Start waits for the server to answer PING.
	ReadyTimeout = 20 * time.Second
	// StopTimeout is how long Cleanup waits after SIGTERM before SIGKILL.
	StopTimeout = 10 * time.Second
	// MaxLog is how much of the server's output is kept for a failing test.
	MaxLog        = 64 << 10
	startAttempts = 3
)

// Server is a running redis-server. Safe for concurrent use.
type Server struct {
	Addr string // 127.0.0.1:PORT
	URL  string // redis://127.0.0.1:PORT/0

	cmd    *exec.Cmd
	exited chan error
	log    *limitedBuffer

	mu     sync.Mutex
	paused bool
}

// Binary returns the path of redis-server, or "" when none is found.
func Binary() string {
	if p := os.Getenv("REDIS_SERVER_BIN"); p != "" {
		return p
	}
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/redis-server"); err == nil {
		return "/usr/bin/redis-server"
	}
	return ""
}

// Start runs redis-server on a free 127.0.0.1 port without persistence,
// waits until it answers PING, and stops it in t.Cleanup. Without a binary it
// skips the test, unless CI=true, where it fails it.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		const msg = "redistest: no redis-server binary (apt-get install redis-server, or set REDIS_SERVER_BIN)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; CI=true requires it")
		}
		t.Skip(msg)
		return nil
	}
	var lastErr error
	for range startAttempts {
		s, err := start(bin, t.TempDir())
		if err == nil {
			t.Cleanup(func() {
				if err := s.stop(); err != nil {
					t.Errorf("redistest: stop: %v", err)
				}
				if t.Failed() {
					t.Logf("redistest: redis-server output:\n%s", s.log.String())
				}
			})
			return s
		}
		lastErr = err
	}
	t.Fatalf("redistest: start %s: %v", bin, lastErr)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func start(bin, dir string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("pick a port: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := &Server{Addr: addr, URL: "redis://" + addr + "/0", log: &limitedBuffer{max: MaxLog}}
	s.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	s.exited = make(chan error, 1)
	go func() { s.exited <- s.cmd.Wait() }()
	deadline := time.Now().Add(ReadyTimeout)
	for {
		if reply, err := s.Do("PING"); err == nil && reply == "PONG" {
			return s, nil
		}
		select {
		case err := <-s.exited:
			return nil, fmt.Errorf("exited before ready (%v):\n%s", err, s.log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.cmd.Process.Kill()
			<-s.exited
			return nil, fmt.Errorf("no PONG after %v:\n%s", ReadyTimeout, s.log.String())
		}
	}
}

// Do sends one command over a fresh connection and returns the reply's
// first line without its type byte (a status, an error, an integer, or a
// bulk string of one line). Enough for the harness and for INFO fields.
func (s *Server) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write(b.Bytes()); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("empty reply")
	}
	switch line[0] {
	case '-':
		return "", fmt.Errorf("redis: %s", line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return line[1:], nil
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
func (s *Server) Pause() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = true
	return s.cmd.Process.Signal(syscall.SIGSTOP)
}

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = false
	return s.cmd.Process.Signal(syscall.SIGCONT)
}

func (s *Server) stop() error {
	s.mu.Lock()
	if s.paused {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
		s.paused = false
	}
	s.mu.Unlock()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(StopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("no exit %v after SIGTERM, killed", StopTimeout)
	}
}

// limitedBuffer keeps the first max bytes written to it. Safe for concurrent use.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
	cut bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room < len(p) {
		b.buf.Write(p[:max(room, 0)])
		b.cut = true
		return len(p), nil
	}
	b.buf.Write(p)
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cut {
		return b.buf.String() + "\n[output truncated]"
	}
	return b.buf.String()
}
