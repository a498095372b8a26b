package testproc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLimitedBuffer(t *testing.T) {
	b := &LimitedBuffer{Max: 5}
	b.Write([]byte("abc"))
	b.Write([]byte("defg"))
	b.Write([]byte("h"))
	if got, want := b.String(), "abcde\n[output truncated]"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	var all LimitedBuffer // Max 0: no limit
	all.Write([]byte("abcdefgh"))
	if got := all.String(); got != "abcdefgh" {
		t.Fatalf("Max 0: got %q", got)
	}
}

// fakeTB records Skip and Fatal instead of stopping the goroutine.
type fakeTB struct {
	testing.TB
	skipped, fatal string
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Skip(args ...any)  { f.skipped = fmt.Sprint(args...) }
func (f *fakeTB) Fatal(args ...any) { f.fatal = fmt.Sprint(args...) }

func TestMissing(t *testing.T) {
	const msg = "x: no x binary (apt-get install x)"
	t.Setenv("CI", "")
	local := &fakeTB{TB: t}
	Missing(local, msg)
	if local.skipped != msg || local.fatal != "" {
		t.Errorf("local: skipped %q fatal %q", local.skipped, local.fatal)
	}
	t.Setenv("CI", "true")
	ci := &fakeTB{TB: t}
	Missing(ci, msg)
	if ci.fatal != msg+"; CI=true requires it" || ci.skipped != "" {
		t.Errorf("CI: skipped %q fatal %q", ci.skipped, ci.fatal)
	}
}

// TestProcLifecycle: a process that never gets ready is killed with its
// output in the error; one that exits early says so; Stop ends a running one.
func TestProcLifecycle(t *testing.T) {
	sh := Find("SH_BIN", "sh")
	if sh == "" {
		Missing(t, "no sh on PATH (set SH_BIN)")
		return
	}
	p, err := Start(exec.Command(sh, "-c", "echo starting; exec sleep 30"), 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitReady(func() bool { return false }, 10*time.Millisecond, 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "not ready after") || !strings.Contains(err.Error(), "starting") {
		t.Fatalf("never ready: %v", err)
	}

	p, err = Start(exec.Command(sh, "-c", "echo bad flag >&2; exit 3"), 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitReady(func() bool { return false }, 10*time.Millisecond, 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "exited before ready") || !strings.Contains(err.Error(), "bad flag") {
		t.Fatalf("early exit: %v", err)
	}

	p, err = Start(exec.Command(sh, "-c", "exec sleep 30"), 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := p.WaitReady(func() bool { n++; return n == 3 }, time.Millisecond, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.Stop(syscall.SIGTERM, 5*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Stop took %v: the process ignored SIGTERM and was killed", d)
	}
}

// TestStat reads this process's CPU time and resident memory.
func TestStat(t *testing.T) {
	cpu, rss, err := Stat(os.Getpid())
	if err != nil || cpu < 0 || rss <= 0 {
		t.Errorf("cpu %v, rss %d, err %v", cpu, rss, err)
	}
	if _, _, err := Stat(-1); err == nil {
		t.Error("no error for pid -1")
	}
}

// TestRunRedisPortTaken: a second redis-server on a port the first holds is
// never taken for ready, although the first answers on that port; StartRedis
// then gives a port of its own.
func TestRunRedisPortTaken(t *testing.T) {
	bin := Find("REDIS_SERVER_BIN", "redis-server")
	if bin == "" {
		Missing(t, "redis-server not found (apt-get install redis-server)")
	}
	first, port, err := StartRedis(context.Background(), bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Stop(syscall.SIGTERM, 5*time.Second)
	second, err := RunRedis(context.Background(), bin, t.TempDir(), port, 5*time.Second)
	if err == nil {
		second.Stop(syscall.SIGTERM, 5*time.Second)
		t.Fatalf("a second redis-server on port %d was ready: the first one's answer was taken for its own", port)
	}
	if !strings.Contains(err.Error(), "in use") {
		t.Errorf("RunRedis on a taken port: %v; want the bind error", err)
	}
}

func TestWorkerListening(t *testing.T) {
	out := `time=2026-12-04T05:09:57.530Z level=INFO msg="HTTPS drain listening" addr=[::]:42919 path=/logs` + "\n"
	for port, want := range map[int]bool{42919: true, 4291: false, 2919: false} {
		if got := WorkerListening(out, port); got != want {
			t.Errorf("WorkerListening(…, %d) = %v, want %v", port, got, want)
		}
	}
}

func TestOnFreePort(t *testing.T) {
	var tried []int
	port, err := OnFreePort(func(port int) error {
		if tried = append(tried, port); len(tried) < 3 {
			return fmt.Errorf("listen tcp 127.0.0.1:%d: bind: address already in use", port)
		}
		return nil
	})
	if err != nil || len(tried) != 3 || port != tried[2] {
		t.Errorf("OnFreePort = %d, %v after trying %v; want the third port, no error", port, err, tried)
	}
	tried = nil
	_, err = OnFreePort(func(port int) error {
		tried = append(tried, port)
		return fmt.Errorf("config refused")
	})
	if err == nil || len(tried) != 1 {
		t.Errorf("OnFreePort with another error: %v after %d tries; want the error after one", err, len(tried))
	}
	tried = nil
	_, err = OnFreePort(func(port int) error {
		tried = append(tried, port)
		return fmt.Errorf("redis-server: bind: Address already in use")
	})
	if err == nil || len(tried) != 3 {
		t.Errorf("OnFreePort with every port taken: %v after %d tries; want the error after three", err, len(tried))
	}
}
