package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/store"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
)

// TestRedisDownFallback: with Redis unreachable beyond REDIS_FALLBACK_AFTER
// the worker keeps accepting and sends its due buckets itself, counted and
// logged once; nothing accepted is lost.
func TestRedisDownFallback(t *testing.T) {
	srv := redistest.Start(t)
	cfg := Config{
		Drain:           drain.Env{User: testUser, Password: testPass},
		Buckets:         aggregate.Env{Resolution: time.Second, Grace: 500 * time.Millisecond},
		Redis:           store.Env{URL: srv.URL, Handover: 100 * time.Millisecond, FallbackAfter: time.Second, Partitions: 4},
		ShutdownTimeout: 10 * time.Second,
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var out, logs bytes.Buffer
	w, err := newWorker(cfg, options{stdout: lockedWriter{&mu, &out}, logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)),
		drainListener: l, flushEvery: 100 * time.Millisecond, redisTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.run(ctx) }()
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer srv.Resume()
	url := "http://" + l.Addr().String() + "/logs"
	start := time.Now().Truncate(time.Second)
	for i := range 3 {
		postDrain(t, url, fmt.Sprintf("f%d", i), frame(fmt.Sprintf("<190>1 %s host app web.1 - count#req=%d", syslogTime(start.Add(100*time.Millisecond)), i+1)))
	}
	want := fmt.Sprintf("bucket=%s period=1s source=web.1 count#req=6", start.UTC().Format(time.RFC3339))
	waitFor(t, "the bucket sent by this worker alone", 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(out.String(), want)
	})
	if st := w.shared.st.Stats(); st.FallbackBuckets == 0 || st.HandoverErrors == 0 {
		t.Errorf("stats %+v", st)
	}
	_ = srv.Resume()
	cancel()
	if err := <-errc; err != nil {
		t.Error(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "sending due buckets from this worker alone"); n != 1 {
		t.Errorf("fallback logged %d times, want once:\n%s", n, logs.String())
	}
	if n := strings.Count(out.String(), "count#req="); n != 1 {
		t.Errorf("bucket printed %d times:\n%s", n, out.String())
	}
}

var _ io.Writer = lockedWriter{}
