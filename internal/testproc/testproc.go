// Package testproc runs a real server binary (Prometheus, redis-server) for
// tests: it finds the binary, skips the test with an install hint when there
// is none (and fails it when CI=true, where .ci/run installs it), picks a free
// 127.0.0.1 port, keeps a bounded copy of the server's output, waits until
// the server is ready, and stops it. The starters that other packages' tests
// share (internal/promtest, internal/store/redistest) are built on it.
package testproc

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Find returns the path of a server binary: $envVar when set, else name on
// PATH, else /usr/bin/name when it exists, else "".
func Find(envVar, name string) string {
	if p := os.Getenv(envVar); p != "" {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/" + name); err == nil {
		return "/usr/bin/" + name
	}
	return ""
}

// Missing skips the test with msg (say how to install the binary), or fails
// it when the environment says CI=true, where the binary must be there.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI=true requires it")
		return
	}
	t.Skip(msg)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Starters retry on a clash.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Proc is a started server process with its output kept (the first MaxLog
// bytes).
type Proc struct {
	Cmd    *exec.Cmd
	Log    *LimitedBuffer
	exited chan error
}

// Start starts cmd with its stdout and stderr going to a LimitedBuffer of
// maxLog bytes.
func Start(cmd *exec.Cmd, maxLog int) (*Proc, error) {
	p := &Proc{Cmd: cmd, Log: &LimitedBuffer{Max: maxLog}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.Log, p.Log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.exited <- cmd.Wait() }()
	return p, nil
}

// WaitReady calls ready every interval until it returns true, the process
// exits, or timeout passes; then it kills the process and says why, with its
// output.
func (p *Proc) WaitReady(ready func() bool, interval, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if ready() {
			return nil
		}
		select {
		case err := <-p.exited:
			p.exited <- err // for Stop
			return fmt.Errorf("exited before ready (%v):\n%s", err, p.Log.String())
		case <-time.After(interval):
		}
		if time.Now().After(deadline) {
			_ = p.Cmd.Process.Kill()
			<-p.exited
			return fmt.Errorf("not ready after %v:\n%s", timeout, p.Log.String())
		}
	}
}

// Stop sends sig and waits up to timeout for the process to exit, then kills
// it (and says so).
func (p *Proc) Stop(sig os.Signal, timeout time.Duration) error {
	if err := p.Cmd.Process.Signal(sig); err != nil {
		return err
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(timeout):
		_ = p.Cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("no exit %v after %v, killed", timeout, sig)
	}
}

// LimitedBuffer keeps the first Max bytes written to it (all of them when
// Max is 0, so the zero value is a plain buffer for logs) and notes that the
// rest was cut. Safe for concurrent use.
type LimitedBuffer struct {
	Max int

	mu  sync.Mutex
	buf bytes.Buffer
	cut bool
}

// Write keeps what fits and reports the whole of p written, so that the
// process writing never blocks or fails.
func (b *LimitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.Max - b.buf.Len(); b.Max > 0 && room < len(p) {
		b.buf.Write(p[:max(room, 0)])
		b.cut = true
		return len(p), nil
	}
	b.buf.Write(p)
	return len(p), nil
}

// String returns what was kept, marked when something was cut.
func (b *LimitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cut {
		return b.buf.String() + "\n[output truncated]"
	}
	return b.buf.String()
}
