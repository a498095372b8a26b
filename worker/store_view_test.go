package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/store"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
)

// TestViewersSeeEveryWorkersBuckets: with shared state each worker's
// viewers (the live view) see every merged bucket of the app once, whole,
// whichever worker flushed it, including buckets of lines the other worker
// received.
func TestViewersSeeEveryWorkersBuckets(t *testing.T) {
	t.Parallel() // waits on the clock, not the CPU: overlaps with the other long end-to-end tests
	srv := redistest.Start(t)
	cfg := Config{
		Drain:           drain.Env{User: testUser, Password: testPass},
		Buckets:         aggregate.Env{Resolution: time.Second, Grace: 500 * time.Millisecond},
		Redis:           store.Env{URL: srv.URL, Handover: 100 * time.Millisecond, FallbackAfter: time.Minute, Partitions: 4},
		ShutdownTimeout: 5 * time.Second,
	}
	type view struct {
		start time.Time
		sums  map[string]float64
	}
	ctx, cancel := context.WithCancel(context.Background())
	var urls []string
	var views []chan view
	var errs []chan error
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		w, err := newWorker(cfg, options{stdout: io.Discard, logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			drainListener: l, flushEvery: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan view, 100)
		w.viewers = append(w.viewers, func(b *aggregate.Bucket) {
			v := view{b.Start, map[string]float64{}}
			for _, s := range b.Series {
				v.sums[s.Source] += s.Sum
			}
			ch <- v
		})
		errc := make(chan error, 1)
		go func() { errc <- w.run(ctx) }()
		urls = append(urls, "http://"+l.Addr().String()+"/logs")
		views = append(views, ch)
		errs = append(errs, errc)
	}
	// Lines of one bucket, 20 sources, all to the first worker.
	start := time.Now().Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(start.Add(100 * time.Millisecond)))
	var msgs []string
	for i := range 20 {
		msgs = append(msgs, fmt.Sprintf("<190>1 %s host app web.%d - count#req=%d", syslogTime(start.Add(50*time.Millisecond)), i, i+1))
	}
	postDrain(t, urls[0], "v1", frame(msgs...))
	for i, ch := range views {
		select {
		case v := <-ch:
			if !v.start.Equal(start) || len(v.sums) != 20 || v.sums["web.19"] != 20 {
				t.Errorf("worker %d viewed %v with %d sources: %v", i, v.start, len(v.sums), v.sums)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("worker %d's viewers saw nothing", i)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	for i, ch := range views {
		select {
		case v := <-ch:
			t.Errorf("worker %d viewed a second bucket %v", i, v.start)
		default:
		}
	}
	cancel()
	for _, e := range errs {
		if err := <-e; err != nil {
			t.Error(err)
		}
	}
}
