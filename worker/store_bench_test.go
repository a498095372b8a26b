package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/store"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
)

// BenchmarkIngestRedis measures drain ingest (HTTP POST → parse →
// aggregate) with shared state off and on, in one run: with REDIS_URL the
// hand-over loop takes the partials out of the aggregator and writes them to
// a real redis-server every REDIS_HANDOVER (500 ms here, 4× more often than
// the default) while the bodies arrive. Each body holds 200 lines over 2,000
// series.
func BenchmarkIngestRedis(b *testing.B) {
	srv := redistest.Start(b)
	for _, tc := range []struct {
		on, frameIDs bool
	}{{false, true}, {true, false}, {true, true}} {
		on := tc.on
		b.Run(fmt.Sprintf("redis=%v/frame-ids=%v", on, tc.frameIDs), func(b *testing.B) {
			cfg := Config{
				Drain:           drain.Env{User: testUser, Password: testPass},
				Buckets:         aggregate.Env{Resolution: time.Minute, Grace: 10 * time.Second},
				Redis:           store.Env{Handover: 500 * time.Millisecond, FallbackAfter: time.Minute, Partitions: 16},
				ShutdownTimeout: 10 * time.Second,
			}
			if on {
				cfg.Redis.URL = srv.URL
			}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			ready := make(chan *worker, 1)
			errc := make(chan error, 1)
			go func() {
				errc <- run(ctx, cfg, options{stdout: io.Discard, logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
					drainListener: l, ready: func(w *worker) { ready <- w }})
			}()
			wk := <-ready
			url := "http://" + l.Addr().String() + "/logs"
			const lines = 200
			bodies := make([][]byte, 16)
			now := time.Now()
			for i := range bodies {
				var msgs []string
				for j := range lines {
					msgs = append(msgs, fmt.Sprintf("<190>1 %s host app web.%d - count#req=1 measure#db.latency=%dms sample#queue=%d",
						syslogTime(now), (i*lines+j)%20, j%50, j))
				}
				bodies[i] = frame(msgs...)
			}
			client := &http.Client{}
			post := func(i int) {
				for {
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[i%len(bodies)]))
					req.SetBasicAuth(testUser, testPass)
					if tc.frameIDs {
						req.Header.Set("Logplex-Frame-Id", fmt.Sprintf("%d-%d", now.UnixNano(), i))
					}
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusServiceUnavailable {
						return
					}
					time.Sleep(time.Millisecond) // the queue is full: retry, as Logplex does
				}
			}
			added0 := wk.agg.Stats().Added
			b.ResetTimer()
			t0 := time.Now()
			for i := range b.N {
				post(i)
			}
			want := added0 + uint64(b.N*lines*3)
			for wk.agg.Stats().Added < want {
				time.Sleep(time.Millisecond)
			}
			el := time.Since(t0)
			b.StopTimer()
			b.ReportMetric(float64(b.N*lines)/el.Seconds(), "lines/s")
			cancel()
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
		})
	}
}
