// Package load posts Logplex drain bodies to workers' drains as Logplex
// does: over keep-alive connections, each POST with a Logplex-Frame-Id of its
// own, a 503 (the drain's queue is full) retried with the same Frame-Id
// without limit, a network error up to four times. It is the load of
// internal/tools/drainload, drainbench and capacity; it also holds
// drainload's bodies and the sink that stands in for an outlet's receiver.
package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// maxAttempts bounds the attempts of one POST on network errors.
const maxAttempts = 5

// Loader posts bodies to drains until its context ends or Max bodies were
// posted. Set its fields before Run; Run may be called again (the Frame-Ids
// go on) but not concurrently.
type Loader struct {
	URLs  []string // drains, http://user:pass@host:port/logs; connection i posts to URLs[i mod len]
	Conns int      // keep-alive connections, one goroutine each
	Rate  float64  // bodies per second over all connections; 0: as fast as the drains answer
	Max   int64    // bodies per Run; 0: until the context ends
	// Body returns body n (it may build it in buf) and its number of lines.
	Body func(n int64, buf []byte) (body []byte, lines int)
	// OK, when set, is called (concurrently) for every body answered 2xx.
	OK func(n int64)

	prefix string       // of the Frame-Ids: random per Loader
	seq    atomic.Int64 // bodies handed out over every Run
}

// Counts is what one Run achieved.
type Counts struct {
	Lines, Posts int64         // answered 2xx
	Refused      int64         // answers 503, each retried
	ErrRetries   int64         // network errors retried
	Failed       int64         // POSTs given up on
	Elapsed      time.Duration // until the last POST was answered
}

// LinesPerSec is the accepted rate.
func (c Counts) LinesPerSec() float64 {
	if c.Elapsed <= 0 {
		return 0
	}
	return float64(c.Lines) / c.Elapsed.Seconds()
}

// LinesPerCPUSecond is the accepted lines per second of cpu (CPU time spent
// on them), 0 without any.
func (c Counts) LinesPerCPUSecond(cpu time.Duration) float64 {
	if cpu <= 0 {
		return 0
	}
	return float64(c.Lines) / cpu.Seconds()
}

// Run posts until ctx ends or Max bodies were posted. A POST under way when
// ctx ends is answered (its retries stop), so that every body a drain took
// is counted.
func (l *Loader) Run(ctx context.Context) Counts {
	if l.prefix == "" {
		l.prefix = fmt.Sprintf("%08X", rand.Uint32())
	}
	var lines, posts, refused, errRetries, failed, next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for i := range l.Conns {
		p := newPoster(l.URLs[i%len(l.URLs)])
		wg.Go(func() {
			defer p.client.CloseIdleConnections()
			var buf []byte
			for ctx.Err() == nil {
				n := next.Add(1) - 1 // this Run's body n, for Max and the pacing
				if l.Max > 0 && n >= l.Max {
					return
				}
				if l.Rate > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(time.Until(start.Add(time.Duration(float64(n) / l.Rate * float64(time.Second))))):
					}
				}
				id := l.seq.Add(1) - 1
				body, nl := l.Body(id, buf)
				buf = body
				r503, rErr, ok := p.post(ctx, body, nl, fmt.Sprintf("%s%024X", l.prefix, id))
				refused.Add(r503)
				errRetries.Add(rErr)
				switch {
				case ok:
					lines.Add(int64(nl))
					posts.Add(1)
					if l.OK != nil {
						l.OK(id)
					}
				case ctx.Err() == nil:
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return Counts{Lines: lines.Load(), Posts: posts.Load(), Refused: refused.Load(), ErrRetries: errRetries.Load(),
		Failed: failed.Load(), Elapsed: time.Since(start)}
}

// poster sends the POSTs of one connection.
type poster struct {
	client *http.Client
	url    string // its user:password is sent as basic auth by the client
}

func newPoster(target string) *poster {
	tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, DisableCompression: true, IdleConnTimeout: time.Minute}
	return &poster{client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, url: target}
}

// post sends body until it is accepted (2xx), retrying 503s and network
// errors with the same Frame-Id until ctx ends, and reports the retries and
// success.
func (p *poster) post(ctx context.Context, body []byte, lines int, id string) (r503, rErr int64, ok bool) {
	count := strconv.Itoa(lines)
	for attempt := 0; attempt < maxAttempts && ctx.Err() == nil; {
		// A new reader per attempt: the transport may still be reading the
		// previous attempt's body when its response (or error) arrives.
		req, err := http.NewRequest(http.MethodPost, p.url, bytes.NewReader(body))
		if err != nil {
			return r503, rErr, false
		}
		req.Header = http.Header{
			"Content-Type":      {"application/logplex-1"},
			"Logplex-Msg-Count": {count},
			"Logplex-Frame-Id":  {id},
			"User-Agent":        {"drainload"},
		}
		resp, err := p.client.Do(req)
		if err != nil {
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

// MixedBodies returns n Logplex bodies of lines messages each: a realistic mix
// of app l2met lines, router lines, runtime metrics and add-on metrics, about
// 200 bytes each, stamped in the seconds before now (1 ms apart), so that a
// worker aggregates them rather than dropping them as too old.
func MixedBodies(n, lines int) [][]byte {
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

// Sink stands in for an outlet's receiver (Librato): it takes every request.
var Sink = http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) })
