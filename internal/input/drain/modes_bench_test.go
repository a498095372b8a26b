package drain_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/appauth"
	"github.com/dynometrics/dynometrics/internal/appstats"
	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// modesRound is how many bodies one round posts to one mode: below half
// the queue, so that neither mode ever answers 503 (a retried POST would be
// measured twice).
const modesRound = 256

// ingestMode is one mode's pipeline, as the worker wires it: a drain
// Handler, its Processor and a real Aggregator, behind a sink that says
// when a round's measurements have all been aggregated (so the poster waits
// without spinning).
type ingestMode struct {
	h      *drain.Handler
	p      *input.Processor
	added  atomic.Int64 // measurements aggregated
	target int64        // added at the end of the round
	done   chan struct{}
	agg    *aggregate.Aggregator
	reqs   []*http.Request
	spent  time.Duration // wall time of its rounds
	cpu    time.Duration // CPU time of the process (user and system) during its rounds
	// allocs is the heap allocations of its rounds (every goroutine's: the
	// parsers' too).
	allocs uint64
	bodies int
}

func newIngestMode(b *testing.B, multi bool) *ingestMode {
	b.Helper()
	now := time.Date(2024, 5, 1, 12, 0, 30, 0, time.UTC)
	clock := func() time.Time { return now }
	var apps *appstats.Table
	var keys *appauth.Keyring
	if multi {
		apps = appstats.New(nil)
		var err error
		keys, err = appauth.New([]string{"0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"})
		if err != nil {
			b.Fatal(err)
		}
	}
	agg, err := aggregate.New(aggregate.Config{Resolution: time.Minute, Now: clock, Apps: apps})
	if err != nil {
		b.Fatal(err)
	}
	m := &ingestMode{agg: agg, done: make(chan struct{}, 1)}
	p, err := input.NewProcessor(input.SinkFunc(func(ms []metric.Measurement) {
		agg.Add(ms)
		if m.added.Add(int64(len(ms))) == m.target {
			m.done <- struct{}{}
		}
	}), input.Config{Now: clock, Apps: apps})
	if err != nil {
		b.Fatal(err)
	}
	// One parser: two would contend for the shard locks of the series
	// they share, and how much depends on where the seeded hashes put the
	// series, differently in each mode and run (ratios from 0.7 to 1.2).
	cfg := drain.Config{User: user, Password: pass, DedupSize: -1, Workers: 1}
	if multi {
		cfg = drain.Config{Apps: keys, AppStats: apps, DedupSize: -1, Workers: 1}
	}
	m.p = p
	if m.h, err = drain.New(p, cfg); err != nil {
		b.Fatal(err)
	}
	for _, app := range []string{"billing", "shop"} {
		req, _ := http.NewRequest(http.MethodPost, "http://drain"+drain.LogsPath, nil)
		if multi {
			req.SetBasicAuth(app, keys.Token(app))
		} else {
			req.SetBasicAuth(user, pass)
		}
		req.Header.Set("Content-Type", "application/logplex-1")
		m.reqs = append(m.reqs, req)
	}
	if len(m.reqs) != 2 {
		b.Fatal("want two requests")
	}
	return m
}

// round posts modesRound bodies, alternating the two requests and the two
// bodies, and waits until the parsers have aggregated them all.
func (m *ingestMode) round(b *testing.B, bodies [2][]byte, perBody int, w *statusWriter, br *bytes.Reader) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs := ms.Mallocs
	m.target += modesRound * int64(perBody)
	cpu := processCPU(b)
	start := time.Now()
	for i := range modesRound {
		req, body := m.reqs[i%2], bodies[i%2]
		br.Reset(body)
		req.Body = io.NopCloser(br)
		req.ContentLength = int64(len(body))
		w.status = 0
		m.h.ServeHTTP(w, req)
		if w.status != http.StatusNoContent {
			b.Fatalf("status %d", w.status)
		}
	}
	<-m.done
	m.spent += time.Since(start)
	m.cpu += processCPU(b) - cpu
	runtime.ReadMemStats(&ms)
	m.allocs += ms.Mallocs - mallocs
	m.bodies += modesRound
}

// processCPU returns the CPU time the process has used, user and system:
// unlike wall time, other processes on a shared machine barely change it.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIngestModes compares ingest per line, from ServeHTTP through
// parsing into the real aggregator, in single-app mode (DRAIN_USER and
// DRAIN_PASSWORD) and in multi-app mode (DRAIN_SECRET with two secrets,
// bodies of two apps in turn, per-app shares and self-metrics on): the same
// two 100-line bodies (the same lines from different dynos) in turn, in
// rounds of 256 bodies that alternate between the two modes, so both see
// the same machine. A round ends when the last of its
// measurements has been aggregated. It reports each mode's wall ns/line,
// the process's CPU ns/line (user and system; steadier than wall time when
// other processes share the machine), allocations per body, and the
// ratios multi/single.
func BenchmarkIngestModes(b *testing.B) {
	single, multi := newIngestMode(b, false), newIngestMode(b, true)
	// Two bodies of the same lines from other dynos, so that the single-app
	// mode has as many series as the multi-app one.
	body := benchBody()
	bodies := [2][]byte{body, bytes.ReplaceAll(bytes.ReplaceAll(body, []byte("web.1"), []byte("web.3")), []byte("worker.2"), []byte("worker.4"))}
	perBody := 0 // measurements per body
	count, err := input.NewProcessor(input.SinkFunc(func(ms []metric.Measurement) { perBody += len(ms) }), input.Config{})
	if err != nil {
		b.Fatal(err)
	}
	s := count.Session()
	s.Frames(body)
	s.Release()
	w := &statusWriter{h: http.Header{}}
	var br bytes.Reader
	b.SetBytes(int64(modesRound * (len(bodies[0]) + len(bodies[1]))))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		// Alternate which goes first, so neither always follows the other.
		if i%2 == 0 {
			single.round(b, bodies, perBody, w, &br)
			multi.round(b, bodies, perBody, w, &br)
		} else {
			multi.round(b, bodies, perBody, w, &br)
			single.round(b, bodies, perBody, w, &br)
		}
	}
	b.StopTimer()
	for _, m := range []*ingestMode{single, multi} {
		if err := m.h.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
		if lines := m.p.Stats().Lines; lines != uint64(m.bodies)*100 {
			b.Fatalf("parsed %d lines, want %d", lines, m.bodies*100)
		}
		if st := m.agg.Stats(); st.Added == 0 || st.Added+st.DroppedConflict != m.p.Stats().Measurements {
			b.Fatalf("aggregator stats %+v, %d measurements", st, m.p.Stats().Measurements)
		}
	}
	perLine := func(d time.Duration, m *ingestMode) float64 { return float64(d.Nanoseconds()) / float64(m.bodies*100) }
	b.ReportMetric(perLine(single.spent, single), "single-ns/line")
	b.ReportMetric(perLine(multi.spent, multi), "multi-ns/line")
	b.ReportMetric(perLine(multi.spent, multi)/perLine(single.spent, single), "multi/single")
	b.ReportMetric(perLine(single.cpu, single), "single-cpu-ns/line")
	b.ReportMetric(perLine(multi.cpu, multi), "multi-cpu-ns/line")
	b.ReportMetric(perLine(multi.cpu, multi)/perLine(single.cpu, single), "cpu-multi/single")
	b.ReportMetric(float64(single.allocs)/float64(single.bodies), "single-allocs/body")
	b.ReportMetric(float64(multi.allocs)/float64(multi.bodies), "multi-allocs/body")
}
