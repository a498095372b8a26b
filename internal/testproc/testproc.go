// Package testproc runs a real server binary (Prometheus, redis-server, the
// built worker) for tests and the benchmark tools: it finds the binary, skips
// the test with an install hint when there is none (and fails it when
// CI=true, where .ci/run installs it), picks a free 127.0.0.1 port, keeps a
// bounded copy of the server's output, waits until the server is ready, and
// stops it. The starters that other packages' tests share
// (internal/promtest, internal/store/redistest) are built on it, and so are
// internal/tools/capacity and drainbench.
package testproc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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

// OnFreePort runs start on a free port, and again on another, up to three
// times, when its error says another process took the port first.
func OnFreePort(start func(port int) error) (port int, err error) {
	for range 3 {
		if port, err = FreePort(); err != nil {
			return 0, err
		}
		if err = start(port); err == nil || !strings.Contains(err.Error(), "already in use") {
			break
		}
	}
	return port, err
}

// Proc is a started server process with its output kept (the first maxLog bytes
// given to Start).
type Proc struct {
	Cmd  *exec.Cmd
	Log  *LimitedBuffer
	done chan struct{} // closed once the process has exited
	err  error         // cmd.Wait's, set before done is closed
}

// Start starts cmd with its stdout and stderr going to a LimitedBuffer of
// maxLog bytes, and to cmd.Stdout as well when that is set.
func Start(cmd *exec.Cmd, maxLog int) (*Proc, error) {
	p := &Proc{Cmd: cmd, Log: &LimitedBuffer{Max: maxLog}, done: make(chan struct{})}
	out := io.Writer(p.Log)
	if cmd.Stdout != nil {
		out = io.MultiWriter(cmd.Stdout, p.Log)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
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
		case <-p.done:
			return fmt.Errorf("exited before ready (%v):\n%s", p.err, p.Log.String())
		case <-time.After(interval):
		}
		if time.Now().After(deadline) {
			_ = p.Cmd.Process.Kill()
			<-p.done
			return fmt.Errorf("not ready after %v:\n%s", timeout, p.Log.String())
		}
	}
}

// Stop sends sig and waits up to timeout for the process to exit, then kills
// it (and says so). A process that had exited already is an error naming its
// exit status; Stop may be called again after it returned.
func (p *Proc) Stop(sig os.Signal, timeout time.Duration) error {
	select {
	case <-p.done:
		return fmt.Errorf("exited before %v (%v)", sig, p.err)
	default:
	}
	if err := p.Cmd.Process.Signal(sig); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		_ = p.Cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("no exit %v after %v, killed", timeout, sig)
	}
}

// GoBuild builds pkg, a path relative to the root of the module the current
// directory is in ("./worker"), into dir and returns the binary's path.
func GoBuild(dir, pkg string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run inside the dynometrics module")
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = filepath.Dir(mod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// StartRedis starts redis-server (bin, or when "" the one Find locates) on a
// free 127.0.0.1 port (RunRedis).
func StartRedis(ctx context.Context, bin, dir string) (p *Proc, port int, err error) {
	if bin == "" {
		if bin = Find("REDIS_SERVER_BIN", "redis-server"); bin == "" {
			return nil, 0, errors.New("redis-server not found (apt-get install redis-server, or set REDIS_SERVER_BIN)")
		}
	}
	port, err = OnFreePort(func(port int) (err error) {
		p, err = RunRedis(ctx, bin, dir, port, 10*time.Second)
		return err
	})
	return p, port, err
}

// RunRedis starts redis-server bin on 127.0.0.1:port without persistence,
// its files in dir, with the arguments extra, and waits up to timeout until
// it answers INFO with its own process id: a server of another test that
// took the port first is never mistaken for this one (this one then exits,
// and the caller may try another port).
func RunRedis(ctx context.Context, bin, dir string, port int, timeout time.Duration, extra ...string) (*Proc, error) {
	p, err := Start(exec.CommandContext(ctx, bin, slices.Concat([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir}, extra)...), 64<<10)
	if err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	own := fmt.Sprintf("\r\nprocess_id:%d\r\n", p.Cmd.Process.Pid)
	ready := func() bool {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err = io.WriteString(c, "INFO server\r\n"); err != nil {
			return false
		}
		r := bufio.NewReader(c)
		head, err := r.ReadString('\n') // $<length>\r\n, then the text
		n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
		if err != nil || n <= 0 {
			return false
		}
		info := make([]byte, n)
		_, err = io.ReadFull(r, info)
		return err == nil && strings.Contains(string(info), own)
	}
	if err := p.WaitReady(ready, 20*time.Millisecond, timeout); err != nil {
		return nil, fmt.Errorf("redis-server: %w", err)
	}
	return p, nil
}

// StartWorker starts the built worker with env and PORT (a free port), its
// output going to out as well when out is not nil, and waits until it says
// it listens on that port (WorkerListening) and /health answers 200. A port
// another process took first is tried again with another, up to three times.
func StartWorker(ctx context.Context, bin string, env []string, out io.Writer) (p *Proc, port int, err error) {
	port, err = OnFreePort(func(port int) error {
		cmd := exec.CommandContext(ctx, bin)
		cmd.Env, cmd.Stdout = slices.Concat(env, []string{"PORT=" + strconv.Itoa(port)}), out
		if p, err = Start(cmd, 64<<10); err != nil {
			return fmt.Errorf("start worker: %w", err)
		}
		health := fmt.Sprintf("http://127.0.0.1:%d/health", port)
		return p.WaitReady(func() bool {
			if !WorkerListening(p.Log.String(), port) {
				return false
			}
			resp, err := http.Get(health)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, 50*time.Millisecond, 30*time.Second)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("worker: %w", err)
	}
	return p, port, nil
}

// WorkerListening reports whether a worker's output says its server on PORT
// listens on port: the proof that what answers there is this worker.
func WorkerListening(output string, port int) bool {
	return strings.Contains(output, fmt.Sprintf(":%d path=/logs", port))
}

// Stat returns a process's user+system CPU time and resident memory in bytes,
// from /proc/PID/stat (Linux only).
func Stat(pid int) (cpu time.Duration, rss int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])) // after the name, which may hold spaces
	var n [3]int64
	for i, k := range []int{11, 12, 21} { // utime and stime in clock ticks, rss in pages
		if len(f) <= k {
			return 0, 0, errors.New("short /proc/PID/stat")
		}
		if n[i], err = strconv.ParseInt(f[k], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("unexpected /proc/PID/stat: %w", err)
		}
	}
	const userHZ = 100 // USER_HZ on every Linux architecture Go supports here
	return time.Duration(n[0]+n[1]) * time.Second / userHZ, n[2] * int64(os.Getpagesize()), nil
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
