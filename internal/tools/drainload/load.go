package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/testproc"
	"github.com/dynometrics/dynometrics/internal/tools/load"
)

// config is what one run does.
type config struct {
	URL       string        // remote drain URL; "" runs the drain in-process
	Conns     int           // client goroutines, one keep-alive connection each
	Lines     int64         // stop after this many lines
	Duration  time.Duration // or after this long
	BodyLines int           // lines per body
	Workers   int           // in-process drain parsing goroutines
	MaxConns  int           // in-process server connection bound
}

// result is what one run measured.
type result struct {
	Addr             string
	load.Counts                    // sent: Lines and Posts answered 2xx, Elapsed until the last answer
	Total            time.Duration // until the sink counted everything (in-process)
	Counted          int64         // lines the Processor parsed
	Measurements     int64         // measurements the sink received
	WantMeasurements int64
	Rejected         int64 // lines with rejected pairs
	Malformed        int64
	BadHeaders       int64
	Duplicates       int64
	LinesPerSec      float64       // Counted / Total
	CPU              time.Duration // user+system CPU time of the process during the run
	RSS              rssStats
}

const (
	user     = "drainload"
	password = "drainload-password"
	// nBodies distinct bodies are cycled through, so sources and values vary.
	nBodies = 16
)

// countingSink counts measurements; it is what the aggregator would be.
type countingSink struct{ n atomic.Int64 }

func (s *countingSink) Add(ms []metric.Measurement) { s.n.Add(int64(len(ms))) }

// run performs one load run and writes its report to out. It returns an error
// wrapping errMismatch when not every line sent was counted.
func run(ctx context.Context, cfg config, out io.Writer) (result, error) {
	if cfg.Conns <= 0 || cfg.Lines <= 0 || cfg.Duration <= 0 || cfg.BodyLines <= 0 {
		return result{}, errors.New("conns, lines, duration and body-lines must be positive")
	}
	bodies := load.MixedBodies(nBodies, cfg.BodyLines)
	var res result

	target := cfg.URL
	var (
		srv  *drain.Server
		h    *drain.Handler
		proc *input.Processor
		sink = &countingSink{}
		per  []int64 // measurements per body
	)
	if target == "" {
		var err error
		per, err = measurementsPerBody(bodies)
		if err != nil {
			return res, err
		}
		proc, err = input.NewProcessor(sink, input.Config{})
		if err != nil {
			return res, err
		}
		h, err = drain.New(proc, drain.Config{User: user, Password: password, Workers: cfg.Workers})
		if err != nil {
			return res, err
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return res, err
		}
		srv = drain.NewServer("", h, cfg.MaxConns)
		go func() { _ = srv.Serve(l) }()
		res.Addr = l.Addr().String()
		target = "http://" + user + ":" + password + "@" + res.Addr + drain.LogsPath
	} else {
		u, err := url.Parse(target)
		if err != nil {
			return res, fmt.Errorf("bad -url: %w", err)
		}
		res.Addr = u.Redacted()
	}

	stopRSS := sampleRSS(100 * time.Millisecond)
	cpu0, _, _ := testproc.Stat(os.Getpid())
	var wantMeasurements atomic.Int64
	ld := &load.Loader{URLs: []string{target}, Conns: cfg.Conns, Max: (cfg.Lines + int64(cfg.BodyLines) - 1) / int64(cfg.BodyLines),
		Body: func(n int64, _ []byte) ([]byte, int) { return bodies[n%int64(len(bodies))], cfg.BodyLines }}
	if per != nil {
		ld.OK = func(n int64) { wantMeasurements.Add(per[n%int64(len(bodies))]) }
	}
	lctx, stop := context.WithTimeout(ctx, cfg.Duration)
	start := time.Now()
	res.Counts = ld.Run(lctx)
	stop()

	var err error
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err = srv.Shutdown(sctx); err != nil {
			err = fmt.Errorf("server shutdown: %w", err)
		}
		err = errors.Join(err, h.Close(sctx))
		res.Total = time.Since(start)
		ps, hs := proc.Stats(), h.Stats()
		res.Counted, res.Measurements = int64(ps.Lines), sink.n.Load()
		res.WantMeasurements = wantMeasurements.Load()
		res.Rejected, res.Malformed, res.BadHeaders = int64(ps.RejectedLines), int64(ps.MalformedFrames), int64(ps.BadHeaders)
		res.Duplicates = int64(hs.Duplicates)
		res.LinesPerSec = float64(res.Counted) / res.Total.Seconds()
	} else {
		res.Total = res.Elapsed
		res.LinesPerSec = float64(res.Lines) / res.Total.Seconds()
	}
	cpu1, _, _ := testproc.Stat(os.Getpid())
	res.CPU, res.RSS = cpu1-cpu0, stopRSS()
	report(out, cfg, res)

	switch {
	case err != nil:
		return res, err
	case res.Failed > 0:
		return res, fmt.Errorf("%d POSTs failed: %w", res.Failed, errMismatch)
	case srv != nil && (res.Counted != res.Lines || res.Measurements != res.WantMeasurements || res.Malformed+res.BadHeaders != 0):
		return res, fmt.Errorf("sent %d lines, counted %d; %d measurements, want %d: %w",
			res.Lines, res.Counted, res.Measurements, res.WantMeasurements, errMismatch)
	}
	return res, nil
}

// measurementsPerBody parses each body once to know how many measurements the
// sink must receive for it.
func measurementsPerBody(bodies [][]byte) ([]int64, error) {
	per := make([]int64, len(bodies))
	for i, b := range bodies {
		s := &countingSink{}
		p, err := input.NewProcessor(s, input.Config{})
		if err != nil {
			return nil, err
		}
		ss := p.Session()
		ss.Frames(b)
		ss.Release()
		if st := p.Stats(); st.MalformedFrames+st.BadHeaders != 0 {
			return nil, fmt.Errorf("generated body %d has %d malformed frames and %d bad headers", i, st.MalformedFrames, st.BadHeaders)
		}
		per[i] = s.n.Load()
	}
	return per, nil
}

// rssStats summarises the VmRSS samples of a run, in KiB.
type rssStats struct {
	Start, Min, Max, End int64
	Samples              int
	PerSecond            string // the samples one second apart, e.g. "12.0 14.5 14.6 MiB"
}

// sampleRSS samples the process's VmRSS every interval until the returned
// stop is called, which samples once more and sums up.
func sampleRSS(interval time.Duration) (stop func() rssStats) {
	var st rssStats
	var perSec []string
	sample := func() {
		_, rss, _ := testproc.Stat(os.Getpid()) // 0 where there is no /proc
		kib := rss >> 10
		if st.Samples == 0 {
			st.Start, st.Min = kib, kib
		}
		st.Min, st.Max, st.End = min(st.Min, kib), max(st.Max, kib), kib
		if st.Samples%int(time.Second/interval) == 0 {
			perSec = append(perSec, fmt.Sprintf("%.1f", float64(kib)/1024))
		}
		st.Samples++
	}
	sample()
	tk := time.NewTicker(interval)
	stopc, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-tk.C:
				sample()
			case <-stopc:
				return
			}
		}
	}()
	return func() rssStats {
		close(stopc)
		<-done
		tk.Stop()
		sample()
		st.PerSecond = strings.Join(perSec, " ") + " MiB"
		return st
	}
}
