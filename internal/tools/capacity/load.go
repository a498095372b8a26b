package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Shape of the corpus: every line carries perLine measurements of one
// source (a dyno), and a source has at most namesPerSource metric names.
const (
	perLine        = 10
	namesPerSource = 1000
	tsLayout       = "2006-01-02T15:04:05.000000+00:00" // fixed width: the bodies are patched in place
)

// corpus is a set of Logplex drain bodies that together carry every one of
// a number of distinct series (name, source) once. Each body is a template:
// every line's timestamp is overwritten with the time of sending.
type corpus struct {
	bodies [][]byte
	lines  []int   // lines per body
	ts     [][]int // offsets of the lines' timestamps
	series int
}

// newCorpus builds the bodies for series distinct series (a multiple of
// perLine), bodyLines lines per body (the last may be shorter). Series i is
// capacity.m<i mod names> of dyno web.<i div names>, names =
// min(series, namesPerSource); a tenth each are count#, three tenths
// sample#, four tenths measure# in ms (the kind follows the name).
func newCorpus(series, bodyLines int) (*corpus, error) {
	if series <= 0 || series%perLine != 0 || bodyLines <= 0 {
		return nil, fmt.Errorf("series must be a positive multiple of %d, body lines positive", perLine)
	}
	names := min(series, namesPerSource)
	if names%perLine != 0 {
		return nil, fmt.Errorf("series must be a multiple of %d", perLine)
	}
	c := &corpus{series: series}
	var buf bytes.Buffer
	var offs []int
	n := 0
	flush := func() {
		if n == 0 {
			return
		}
		c.bodies = append(c.bodies, bytes.Clone(buf.Bytes()))
		c.lines = append(c.lines, n)
		c.ts = append(c.ts, offs)
		buf.Reset()
		offs, n = nil, 0
	}
	placeholder := time.Unix(0, 0).UTC().Format(tsLayout)
	var msg bytes.Buffer
	for l := range series / perLine {
		first := l * perLine
		dyno := first / names
		msg.Reset()
		fmt.Fprintf(&msg, "<190>1 %s host app web.%d - at=info", placeholder, dyno+1)
		for j := range perLine {
			i := first + j
			idx := i % names
			v := (l*7 + j*13) % 1000
			switch idx % 10 {
			case 0, 1, 2:
				fmt.Fprintf(&msg, " count#capacity.m%04d=%d", idx, 1+v%5)
			case 3, 4, 5:
				fmt.Fprintf(&msg, " sample#capacity.m%04d=%d.%d", idx, v, j)
			default:
				fmt.Fprintf(&msg, " measure#capacity.m%04d=%d.%dms", idx, v, j)
			}
		}
		fmt.Fprintf(&buf, "%d ", msg.Len())
		offs = append(offs, buf.Len()+len("<190>1 "))
		buf.Write(msg.Bytes())
		n++
		if n == bodyLines {
			flush()
		}
	}
	flush()
	return c, nil
}

// stamp copies body b into dst with every line stamped t.
func (c *corpus) stamp(dst []byte, b int, t time.Time) []byte {
	dst = append(dst[:0], c.bodies[b]...)
	var ts [len(tsLayout)]byte
	stamp := t.UTC().AppendFormat(ts[:0], tsLayout)
	for _, o := range c.ts[b] {
		copy(dst[o:], stamp)
	}
	return dst
}

// counts is what a load run achieved.
type counts struct {
	Lines, Bodies  int64 // answered 2xx
	Refused        int64 // answered 503 (then retried, as Logplex does)
	Failed         int64 // bodies given up on after retries
	Elapsed        time.Duration
	ScheduledLines int64 // lines the pacing asked for (0: as fast as possible)
}

// LinesPerSec is the accepted rate.
func (c counts) LinesPerSec() float64 {
	if c.Elapsed <= 0 {
		return 0
	}
	return float64(c.Lines) / c.Elapsed.Seconds()
}

// loader posts the corpus's bodies to the workers' drains over conns
// keep-alive connections, connection i to worker i mod len(urls) (as the
// Heroku router spreads a drain's connections over the dynos). Every POST
// gets a Frame-Id of its own.
type loader struct {
	c      *corpus
	urls   []string // http://user:pass@127.0.0.1:port/logs
	conns  int
	run    string       // Frame-Id prefix of this harness run
	seq    atomic.Int64 // Frame-Ids and bodies handed out
	bodies atomic.Int64 // bodies accepted since the start (the Frame-Id keys in Redis)
}

// load posts until ctx ends: rate lines per second spread over the
// connections, or as fast as the workers answer when rate is 0.
func (ld *loader) load(ctx context.Context, rate float64) counts {
	var lines, bodies, refused, failed, scheduled atomic.Int64
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for i := range ld.conns {
		target := ld.urls[i%len(ld.urls)]
		wg.Go(func() {
			tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, DisableCompression: true, IdleConnTimeout: time.Minute}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			var buf []byte
			for ctx.Err() == nil {
				n := next.Add(1) - 1    // this run's body n, for the pacing
				id := ld.seq.Add(1) - 1 // the harness's body id: its Frame-Id and template
				b := int(id % int64(len(ld.c.bodies)))
				if rate > 0 {
					// Body n is due when the lines before it are, at rate.
					at := start.Add(time.Duration(float64(n) * float64(ld.c.lines[0]) / rate * float64(time.Second)))
					select {
					case <-ctx.Done():
						return
					case <-time.After(time.Until(at)):
					}
					scheduled.Add(int64(ld.c.lines[b]))
				}
				buf = ld.c.stamp(buf, b, time.Now())
				r503, ok := ld.post(ctx, client, target, buf, ld.c.lines[b], id)
				refused.Add(r503)
				switch {
				case ok:
					lines.Add(int64(ld.c.lines[b]))
					bodies.Add(1)
					ld.bodies.Add(1)
				case ctx.Err() == nil:
					failed.Add(1)
				}
			}
		})
	}
	<-ctx.Done()
	elapsed := time.Since(start)
	wg.Wait()
	return counts{Lines: lines.Load(), Bodies: bodies.Load(), Refused: refused.Load(), Failed: failed.Load(),
		Elapsed: elapsed, ScheduledLines: scheduled.Load()}
}

// post sends one body until it is accepted, retrying a 503 or a network
// error a few times with the same Frame-Id, as Logplex does.
func (ld *loader) post(ctx context.Context, client *http.Client, target string, body []byte, lines int, seq int64) (r503 int64, ok bool) {
	id := ld.run + fmt.Sprintf("%024x", seq)
	for attempt := range 5 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return r503, false
			case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
		if err != nil {
			return r503, false
		}
		req.Header.Set("Content-Type", "application/logplex-1")
		req.Header.Set("Logplex-Msg-Count", strconv.Itoa(lines))
		req.Header.Set("Logplex-Frame-Id", id)
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, context.Canceled) {
				return r503, false
			}
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode/100 == 2:
			return r503, true
		case resp.StatusCode == http.StatusServiceUnavailable:
			r503++
		default:
			return r503, false
		}
	}
	return r503, false
}
