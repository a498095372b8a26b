package aggregate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/metric"
)

// BenchmarkAdd measures Add per measurement into series that already exist
// in the current bucket (the steady state), with one Add call per batch.
func BenchmarkAdd(b *testing.B) {
	for _, kind := range []metric.Kind{metric.Counter, metric.Sample, metric.Measure} {
		for _, batch := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/batch=%d", kind, batch), func(b *testing.B) {
				a := newTest(b, Config{MaxFuture: time.Hour})
				ms := make([]metric.Measurement, batch)
				r := rand.New(rand.NewPCG(1, 2))
				for i := range ms {
					ms[i] = metric.Measurement{Name: "router.service", Source: "web." + strconv.Itoa(1+i%8), Unit: "ms",
						Kind: kind, Value: math.Round(math.Exp(r.NormFloat64() + 3)), Time: at(float64(i % 60))}
				}
				// Open the series and, for measures, pass ExactLimit so the
				// steady state (the sketch) is measured.
				for range ExactLimit/batch*8 + 8 {
					a.Add(ms)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i += batch {
					a.Add(ms)
				}
			})
		}
	}
}

// BenchmarkAddParallel is BenchmarkAdd/count/batch=64 from every P at once,
// each goroutine writing its own dynos' series (as separate drain
// connections would) or all of them the same series (worst-case contention).
func BenchmarkAddParallel(b *testing.B) {
	for _, shared := range []bool{false, true} {
		b.Run(fmt.Sprintf("shared=%v", shared), func(b *testing.B) {
			a := newTest(b, Config{MaxFuture: time.Hour})
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(1)
			b.RunParallel(func(pb *testing.PB) {
				g := int(next.Add(1))
				ms := make([]metric.Measurement, 64)
				for i := range ms {
					src := "web." + strconv.Itoa(g*100+i%8)
					if shared {
						src = "web." + strconv.Itoa(i%8)
					}
					ms[i] = metric.Measurement{Name: "router.connect", Source: src, Kind: metric.Counter, Value: 1, Time: at(float64(i % 60))}
				}
				i := 0
				for pb.Next() {
					// pb.Next counts one measurement: add a batch every 64.
					if i%64 == 0 {
						a.Add(ms)
					}
					i++
				}
			})
		})
	}
}

// fill adds n series of each kind to a, each with values values, all in the
// bucket at t0.
func fill(a *Aggregator, n, values int) {
	ms := make([]metric.Measurement, 0, 3*values)
	for s := range n / 3 {
		name, src := "metric."+strconv.Itoa(s%100), "web."+strconv.Itoa(s/100)
		ms = ms[:0]
		for v := range values {
			ms = append(ms,
				metric.Measurement{Name: name + ".count", Source: src, Kind: metric.Counter, Value: float64(v), Time: at(float64(v % 60))},
				metric.Measurement{Name: name + ".sample", Source: src, Kind: metric.Sample, Value: float64(v), Time: at(float64(v % 60))},
				metric.Measurement{Name: name + ".measure", Source: src, Kind: metric.Measure, Value: float64(v), Unit: "ms", Time: at(float64(v % 60))})
		}
		a.Add(ms)
	}
}

// BenchmarkFlush measures flushing a bucket of 10,000 series (a third each
// counters, samples and measures with 10 values).
func BenchmarkFlush(b *testing.B) {
	const series = 9999
	a := newTest(b, Config{MaxAge: 1000 * time.Hour, MaxFuture: time.Hour})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// A fresh bucket each round: later than the last one flushed.
		now := t0.Add(time.Duration(i) * time.Minute)
		a.cfg.Now = func() time.Time { return now }
		shifted := func() {
			ms := make([]metric.Measurement, 0, 30)
			for s := range series / 3 {
				name, src := "metric."+strconv.Itoa(s%100), "web."+strconv.Itoa(s/100)
				ms = ms[:0]
				for v := range 10 {
					tm := now.Add(time.Duration(v) * time.Second)
					ms = append(ms,
						metric.Measurement{Name: name + ".count", Source: src, Kind: metric.Counter, Value: float64(v), Time: tm},
						metric.Measurement{Name: name + ".sample", Source: src, Kind: metric.Sample, Value: float64(v), Time: tm},
						metric.Measurement{Name: name + ".measure", Source: src, Kind: metric.Measure, Value: float64(v), Unit: "ms", Time: tm})
				}
				a.Add(ms)
			}
		}
		shifted()
		b.StartTimer()
		got := a.Flush(now.Add(2 * time.Minute))
		if len(got) != 1 || len(got[0].Series) != series {
			b.Fatalf("flushed %d buckets, %+v", len(got), a.Stats())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/series, "ns/series")
}

// BenchmarkMemoryPerSeries reports the heap held per open Measure series
// (state, map entry, raw values or sketch) after adding n values to each:
// bounded by ExactLimit raw values or SketchMaxBins bins, whatever n.
func BenchmarkMemoryPerSeries(b *testing.B) {
	for _, n := range []int{10, 1000, 1_000_000} {
		b.Run("values="+strconv.Itoa(n), func(b *testing.B) {
			series := 1000
			if n >= 1_000_000 {
				series = 4
			}
			r := rand.New(rand.NewPCG(1, 2))
			vals := make([]metric.Measurement, 1000)
			var perSeries float64
			for i := 0; i < b.N; i++ {
				a := newTest(b, Config{MaxFuture: time.Hour})
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for s := range series {
					src := "web." + strconv.Itoa(s)
					for done := 0; done < n; done += len(vals) {
						k := min(len(vals), n-done)
						for j := range k {
							// Latency-shaped: lognormal around 20ms, 0.1ms to minutes.
							vals[j] = metric.Measurement{Name: "router.service", Source: src, Unit: "ms", Kind: metric.Measure,
								Value: math.Round(math.Exp(r.NormFloat64()*1.5+3)*10) / 10, Time: t0}
						}
						a.Add(vals[:k])
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perSeries = float64(after.HeapAlloc-before.HeapAlloc) / float64(series)
				runtime.KeepAlive(a)
			}
			b.ReportMetric(perSeries, "bytes/series")
		})
	}
}
