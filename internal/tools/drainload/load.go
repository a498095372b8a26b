package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/metric"
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
	Sent, Posts      int64         // lines and POSTs answered 2xx
	Retries503       int64         // POSTs answered 503 and retried
	RetriesErr       int64         // POSTs that failed (network) and were retried
	Failed           int64         // POSTs given up on
	SendTime         time.Duration // until the last POST was answered
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
	// maxAttempts bounds the retries of one POST on network errors.
	maxAttempts = 5
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
	bodies := makeBodies(nBodies, cfg.BodyLines)
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

	rss := startRSS(100 * time.Millisecond)
	cpu0 := cpuTime()
	tr := &http.Transport{
		MaxIdleConns:        cfg.Conns,
		MaxIdleConnsPerHost: cfg.Conns,
		MaxConnsPerHost:     cfg.Conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()

	maxBodies := (cfg.Lines + int64(cfg.BodyLines) - 1) / int64(cfg.BodyLines)
	var next, posts, retries503, retriesErr, failed, wantMeasurements atomic.Int64
	deadline := time.Now().Add(cfg.Duration)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range cfg.Conns {
		wg.Go(func() {
			cl := newPoster(client, target, c)
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := next.Add(1) - 1
				if i >= maxBodies {
					return
				}
				b := int(i % int64(len(bodies)))
				r503, rErr, ok := cl.post(ctx, bodies[b], cfg.BodyLines, i)
				retries503.Add(r503)
				retriesErr.Add(rErr)
				if !ok {
					failed.Add(1)
					continue
				}
				posts.Add(1)
				if per != nil {
					wantMeasurements.Add(per[b])
				}
			}
		})
	}
	wg.Wait()
	res.SendTime = time.Since(start)
	res.Posts, res.Retries503, res.RetriesErr, res.Failed = posts.Load(), retries503.Load(), retriesErr.Load(), failed.Load()
	res.Sent = res.Posts * int64(cfg.BodyLines)

	var err error
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if e := srv.Shutdown(sctx); e != nil {
			err = fmt.Errorf("server shutdown: %w", e)
		}
		if e := h.Close(sctx); e != nil {
			err = errors.Join(err, e)
		}
		res.Total = time.Since(start)
		ps, hs := proc.Stats(), h.Stats()
		res.Counted, res.Measurements = int64(ps.Lines), sink.n.Load()
		res.WantMeasurements = wantMeasurements.Load()
		res.Rejected, res.Malformed, res.BadHeaders = int64(ps.RejectedLines), int64(ps.MalformedFrames), int64(ps.BadHeaders)
		res.Duplicates = int64(hs.Duplicates)
		res.LinesPerSec = float64(res.Counted) / res.Total.Seconds()
	} else {
		res.Total = res.SendTime
		res.LinesPerSec = float64(res.Sent) / res.Total.Seconds()
	}
	res.CPU = cpuTime() - cpu0
	res.RSS = rss.stop()
	report(out, cfg, res)

	switch {
	case err != nil:
		return res, err
	case res.Failed > 0:
		return res, fmt.Errorf("%d POSTs failed: %w", res.Failed, errMismatch)
	case srv != nil && (res.Counted != res.Sent || res.Measurements != res.WantMeasurements || res.Malformed+res.BadHeaders != 0):
		return res, fmt.Errorf("sent %d lines, counted %d; %d measurements, want %d: %w",
			res.Sent, res.Counted, res.Measurements, res.WantMeasurements, errMismatch)
	}
	return res, nil
}

// poster sends the POSTs of one client goroutine, reusing its request parts.
type poster struct {
	client *http.Client
	url    *url.URL
	auth   string
	id     []byte
	prefix string
}

func newPoster(client *http.Client, target string, n int) *poster {
	u, _ := url.Parse(target)
	p := &poster{client: client, url: u, prefix: fmt.Sprintf("%08x", n)}
	if u.User != nil {
		pw, _ := u.User.Password()
		r, _ := http.NewRequest(http.MethodPost, "http://x/", nil)
		r.SetBasicAuth(u.User.Username(), pw)
		p.auth = r.Header.Get("Authorization")
		uu := *u
		uu.User = nil
		p.url = &uu
	}
	return p
}

// post sends body until it is accepted (2xx), retrying 503s and network
// errors with the same Frame-Id, and reports the retries and success.
func (p *poster) post(ctx context.Context, body []byte, lines int, seq int64) (r503, rErr int64, ok bool) {
	p.id = append(append(p.id[:0], p.prefix...), fmt.Sprintf("%024x", seq)...)
	id := string(p.id)
	count := strconv.Itoa(lines)
	for attempt := 0; attempt < maxAttempts; {
		// A new reader per attempt: the transport may still be reading the
		// previous attempt's body when its response (or error) arrives.
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url.String(), bytes.NewReader(body))
		if err != nil {
			return r503, rErr, false
		}
		req.Header = http.Header{
			"Content-Type":      {"application/logplex-1"},
			"Logplex-Msg-Count": {count},
			"Logplex-Frame-Id":  {id},
			"User-Agent":        {"drainload"},
		}
		if p.auth != "" {
			req.Header["Authorization"] = []string{p.auth}
		}
		resp, err := p.client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return r503, rErr, false
			}
			rErr++
			attempt++
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode/100 == 2:
			return r503, rErr, true
		case resp.StatusCode == http.StatusServiceUnavailable:
			r503++ // the queue is full: back off briefly, retry without limit
			time.Sleep(time.Millisecond)
		default:
			return r503, rErr, false
		}
	}
	return r503, rErr, false
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

// makeBodies returns n Logplex bodies of lines messages each: a realistic mix
// of app l2met lines, router lines, runtime metrics and add-on metrics, about
// 200 bytes each, stamped in the seconds before now (1 ms apart), so that a
// worker aggregates them rather than dropping them as too old.
func makeBodies(n, lines int) [][]byte {
	bodies := make([][]byte, n)
	t := time.Now().UTC().Add(-time.Duration(n*lines) * time.Millisecond)
	for b := range n {
		var buf bytes.Buffer
		for i := range lines {
			k := b*lines + i
			ts := t.Add(time.Duration(k) * 997 * time.Microsecond).Format("2006-01-02T15:04:05.000000+00:00")
			dyno := fmt.Sprintf("web.%d", k%5+1)
			var msg string
			switch k % 10 {
			case 0, 1, 2, 3:
				msg = fmt.Sprintf("<190>1 %s host app %s - count#http.requests=1 measure#http.latency=%d.%dms measure#db.query=%d.%dms sample#goroutines=%d at=info path=/users/%d",
					ts, dyno, k%97, k%10, k%13, k%7, 40+k%9, k%1000)
			case 4, 5:
				msg = fmt.Sprintf(`<158>1 %s host heroku router - at=info method=GET path="/users/%d" host=ex.herokuapp.com request_id=%08x fwd="10.1.%d.%d" dyno=%s connect=%dms service=%dms status=200 bytes=%d protocol=https`,
					ts, k%1000, k, k%256, k%200, dyno, k%3, 5+k%90, 500+k%3000)
			case 6:
				msg = fmt.Sprintf("<190>1 %s host app worker.%d - count#jobs.done=%d measure#jobs.duration=%dms sample#queue.depth=%d sample#mem.heap=%d.%dMB queue=default",
					ts, k%3+1, 1+k%4, 100+k%900, k%50, 100+k%60, k%10)
			case 7:
				msg = fmt.Sprintf("<45>1 %s host heroku %s - source=%s dyno=heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456 sample#load_avg_1m=%d.%02d sample#load_avg_5m=1.06 sample#load_avg_15m=0.99",
					ts, dyno, dyno, k%4, k%100)
			case 8:
				msg = fmt.Sprintf("<45>1 %s host heroku %s - source=%s dyno=heroku.2808254.d97d0ea7 sample#memory_total=%d.00MB sample#memory_rss=%d.22MB sample#memory_swap=0.00MB",
					ts, dyno, dyno, 200+k%100, 190+k%100)
			default:
				msg = fmt.Sprintf("<134>1 %s host app heroku-postgres - source=DATABASE addon=postgres-parallel-38743 sample#active-connections=%d sample#db_size=%d.0bytes sample#index-cache-hit-rate=0.99%d",
					ts, k%30, 8945836+k, k%1000)
			}
			fmt.Fprintf(&buf, "%d %s\n", len(msg)+1, msg)
		}
		bodies[b] = buf.Bytes()
	}
	return bodies
}

// rssStats summarises the VmRSS samples of a run, in KiB.
type rssStats struct {
	Start, Min, Max, End int64
	Samples              int
	PerSecond            string // the samples one second apart, e.g. "12.0 14.5 14.6 MiB"
}

type rssSampler struct {
	stopc chan struct{}
	done  chan rssStats
}

// startRSS samples VmRSS every interval until stop.
func startRSS(interval time.Duration) *rssSampler {
	s := &rssSampler{stopc: make(chan struct{}), done: make(chan rssStats, 1)}
	go func() {
		var st rssStats
		var perSec []string
		perN := int(time.Second / interval)
		sample := func() {
			kib := readRSS()
			if st.Samples == 0 {
				st.Start, st.Min = kib, kib
			}
			st.Min, st.Max, st.End = min(st.Min, kib), max(st.Max, kib), kib
			if st.Samples%perN == 0 {
				perSec = append(perSec, fmt.Sprintf("%.1f", float64(kib)/1024))
			}
			st.Samples++
		}
		sample()
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-tk.C:
				sample()
			case <-s.stopc:
				sample()
				st.PerSecond = strings.Join(perSec, " ") + " MiB"
				s.done <- st
				return
			}
		}
	}()
	return s
}

func (s *rssSampler) stop() rssStats {
	close(s.stopc)
	return <-s.done
}

// readRSS returns VmRSS in KiB from /proc/self/status, or 0 where there is no
// /proc.
func readRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// cpuTime returns the user+system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
