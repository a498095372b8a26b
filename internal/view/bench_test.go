package view

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// countBuckets returns n buckets of one count# metric from dynos sources.
func countBuckets(n, dynos int) []*aggregate.Bucket {
	bs := make([]*aggregate.Bucket, n)
	for i := range bs {
		ss := make([]aggregate.Series, dynos)
		for d := range ss {
			ss[d] = aggregate.Series{Name: "http.requests", Source: fmt.Sprintf("web.%04d", d), Kind: metric.Counter, Count: 3, Sum: float64(i*7+d) + 0.25}
		}
		bs[i] = &aggregate.Bucket{Start: at(i, 0), Period: time.Minute, Series: ss}
	}
	return bs
}

// BenchmarkSeries is GET /api/series for a metric of 1,000 dynos with 360
// points each (6 h of one-minute buckets): 361,000 points with the
// all-dynos line.
func BenchmarkSeries(b *testing.B) {
	h := newHistory(b, Config{MaxSeries: 1000})
	for _, bk := range countBuckets(360, 1000) {
		h.Write(bk)
	}
	hd := h.Handler(HandlerConfig{})
	for _, enc := range []string{"identity", "gzip"} {
		b.Run(enc, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/api/series?name=http.requests", nil)
			req.Header.Set("Accept-Encoding", enc)
			b.ReportAllocs()
			var size int
			for b.Loop() {
				rec := httptest.NewRecorder()
				hd.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code)
				}
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes/answer")
		})
	}
}

// BenchmarkSeriesEncodingJSON encodes the same answer with encoding/json, from
// a copy of the points (the baseline for the hand-written encoder).
func BenchmarkSeriesEncodingJSON(b *testing.B) {
	h := newHistory(b, Config{MaxSeries: 1000})
	for _, bk := range countBuckets(360, 1000) {
		h.Write(bk)
	}
	type line struct {
		Source string       `json:"source"`
		Last   int64        `json:"last"`
		Ended  bool         `json:"ended"`
		Points [][2]float64 `json:"points"`
	}
	type answer struct {
		Name   string `json:"name"`
		Series []line `json:"series"`
	}
	b.ReportAllocs()
	for b.Loop() {
		h.mu.RLock()
		m := h.metrics["http.requests"]
		a := answer{Name: m.name}
		for _, src := range sortedSources(m) {
			l := m.lines[src]
			ln := line{Source: src, Last: l.newest * h.period, Ended: h.ended(l.newest)}
			l.each(0, func(idx int64, v []float64) { ln.Points = append(ln.Points, [2]float64{float64(idx * h.period), v[0]}) })
			a.Series = append(a.Series, ln)
		}
		h.mu.RUnlock()
		if _, err := json.Marshal(a); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemoryPerSeries measures the heap a line takes, per series (the
// all-dynos line of each metric included), after the given number of
// one-minute buckets: counts and samples store one value per point,
// measures five.
func BenchmarkMemoryPerSeries(b *testing.B) {
	const series = 1000
	for _, tc := range []struct {
		kind   metric.Kind
		points int
	}{{metric.Counter, 10}, {metric.Counter, 360}, {metric.Measure, 10}, {metric.Measure, 360}} {
		b.Run(fmt.Sprintf("%s/%d-points", tc.kind, tc.points), func(b *testing.B) {
			var perSeries float64
			for b.Loop() {
				// Ten dynos per metric: one all-dynos line per ten series.
				bs := make([]*aggregate.Bucket, tc.points)
				for i := range bs {
					ss := make([]aggregate.Series, series)
					for d := range ss {
						ss[d] = aggregate.Series{Name: fmt.Sprintf("m%03d", d/10), Source: fmt.Sprintf("web.%d", d%10), Kind: tc.kind,
							Count: 2, Sum: float64(i), Median: 1, P95: 2, P99: 3, Max: 4, Last: 5}
					}
					bs[i] = &aggregate.Bucket{Start: at(i, 0), Period: time.Minute, Series: ss}
				}
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				h := newHistory(b, Config{MaxSeries: series})
				for _, bk := range bs {
					h.Write(bk)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perSeries = float64(after.HeapAlloc-before.HeapAlloc) / series
				runtime.KeepAlive(h)
				runtime.KeepAlive(bs)
			}
			b.ReportMetric(perSeries, "B/series")
		})
	}
}

// BenchmarkWrite is the viewer's cost per bucket: 100 measure# metrics of 10
// dynos, 50 values each, whose states are merged for the all-dynos lines.
func BenchmarkWrite(b *testing.B) {
	var ms []metric.Measurement
	for m := range 100 {
		for d := range 10 {
			for v := range 50 {
				ms = append(ms, metric.Measurement{Name: fmt.Sprintf("m%03d", m), Source: fmt.Sprintf("web.%d", d), Time: at(0, v), Kind: metric.Measure, Value: float64(v*d + m)})
			}
		}
	}
	bk := flushed(b, ms)[0]
	h := newHistory(b, Config{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		bk.Start = at(i, 0)
		h.Write(bk)
		i++
	}
}
