package throttle_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/throttle"
	"github.com/redis/go-redis/v9"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newLogger(every time.Duration) (*throttle.Logger, *bytes.Buffer, *clock) {
	var buf bytes.Buffer
	c := &clock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	return throttle.New(slog.New(slog.NewTextHandler(&buf, nil)), every, c.now), &buf, c
}

// TestOncePerIntervalPerKind: a kind is logged once per interval, others
// independently of it.
func TestOncePerIntervalPerKind(t *testing.T) {
	l, buf, c := newLogger(time.Minute)
	steps := []struct {
		advance time.Duration
		kind    string
		want    bool
	}{
		{0, "a", true},
		{0, "a", false},
		{0, "b", true},
		{59 * time.Second, "a", false},
		{time.Second, "a", true},
		{0, "b", true}, // its own interval, begun at step 2, ended too
		{59 * time.Second, "b", false},
		{time.Second, "b", true},
	}
	for i, s := range steps {
		c.add(s.advance)
		if got := l.Warn(s.kind, "i", i); got != s.want {
			t.Errorf("step %d (%s): logged %v, want %v", i, s.kind, got, s.want)
		}
	}
	if n := strings.Count(buf.String(), "level=WARN"); n != 5 {
		t.Errorf("%d lines, want 5:\n%s", n, buf.String())
	}
}

func TestConcurrentAllowOnce(t *testing.T) {
	l, _, _ := newLogger(time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	n := 0
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if l.Error("boom") {
				mu.Lock()
				n++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if n != 1 {
		t.Errorf("logged %d times, want 1", n)
	}
}

// TestRedisLogger: go-redis's own messages, through redis.SetLogger's
// interface, are throttled per format.
func TestRedisLogger(t *testing.T) {
	l, buf, c := newLogger(time.Minute)
	var rl interface {
		Printf(ctx context.Context, format string, v ...any)
	} = throttle.RedisLogger{L: l}
	redis.SetLogger(rl) // compiles only if it satisfies go-redis's internal.Logging
	t.Cleanup(func() { redis.SetLogger(nil) })
	for range 20 {
		rl.Printf(context.Background(), "redis: %s:%d: %v", "pool.go", 1, "dial tcp 127.0.0.1:1: connection refused")
	}
	rl.Printf(context.Background(), "other %d", 1)
	c.add(time.Minute)
	rl.Printf(context.Background(), "redis: %s:%d: %v", "pool.go", 1, "again")
	out := buf.String()
	if n := strings.Count(out, "connection refused"); n != 1 {
		t.Errorf("the dial error was logged %d times, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "other 1") || !strings.Contains(out, "again") || !strings.Contains(out, "client=redis") {
		t.Errorf("missing lines:\n%s", out)
	}
}
