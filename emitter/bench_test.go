package emitter

import (
	"io"
	"strconv"
	"testing"
	"time"

	metrics "github.com/rcrowley/go-metrics"
)

// mixedRegistry returns 1,000 metrics: 400 counters, 150 gauges, 100 float
// gauges, 100 meters, 150 timers and 100 histograms, and a function doing
// `updates` updates on each of them.
func mixedRegistry() (metrics.Registry, func(updates int)) {
	r := metrics.NewRegistry()
	var counters []metrics.Counter
	var meters []metrics.Meter
	var timers []metrics.Timer
	var hists []metrics.Histogram
	var gauges []metrics.Gauge
	var gaugesF []metrics.GaugeFloat64
	name := func(kind string, i int) string { return "app." + kind + ".metric_" + strconv.Itoa(i) }
	for i := range 400 {
		counters = append(counters, metrics.GetOrRegisterCounter(name("counter", i), r))
	}
	for i := range 150 {
		gauges = append(gauges, metrics.GetOrRegisterGauge(name("gauge", i), r))
	}
	for i := range 100 {
		gaugesF = append(gaugesF, metrics.GetOrRegisterGaugeFloat64(name("ratio", i), r))
		meters = append(meters, metrics.GetOrRegisterMeter(name("meter", i), r))
		hists = append(hists, GetOrRegisterHistogram(name("size", i), r))
	}
	for i := range 150 {
		timers = append(timers, GetOrRegisterTimer(name("timer", i), r))
	}
	update := func(n int) {
		for k := range n {
			for i, c := range counters {
				c.Inc(int64(i))
			}
			for i, g := range gauges {
				g.Update(int64(i * k))
			}
			for i, g := range gaugesF {
				g.Update(float64(i) / 7)
			}
			for _, m := range meters {
				m.Mark(1)
			}
			for i, t := range timers {
				t.Update(time.Duration(i*1000+k) * time.Microsecond)
			}
			for i, h := range hists {
				h.Update(int64(i + k))
			}
		}
	}
	return r, update
}

// BenchmarkWriteTo1000 emits a registry of 1,000 mixed metrics. The two
// variants differ only in the updates between emissions (done with the timer
// stopped): allocs/op must be the same.
func BenchmarkWriteTo1000(b *testing.B) {
	for _, updates := range []int{1, 100} {
		b.Run("updates="+strconv.Itoa(updates), func(b *testing.B) {
			r, update := mixedRegistry()
			e, err := New(Config{Registry: r, Writer: io.Discard})
			if err != nil {
				b.Fatal(err)
			}
			update(updates)
			e.Flush() // warm the caches
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				update(updates)
				b.StartTimer()
				if err := e.Flush(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkWriteToRuntime(b *testing.B) {
	e, err := New(Config{Registry: metrics.NewRegistry(), Writer: io.Discard, Runtime: true})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		e.Flush()
	}
}

func BenchmarkTimerUpdate(b *testing.B) {
	t := NewTimer()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t.Update(time.Millisecond)
		}
	})
}

func BenchmarkSampleUpdate(b *testing.B) {
	s := NewSample()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int64(0)
		for pb.Next() {
			s.Update(i)
			i++
		}
	})
}

var statsdPacket = []byte("app.requests:1|c\napp.requests:1|c|@0.1\napp.db.query:12.5|ms\napp.payload:512|h\n" +
	"app.queue:7|g\napp.queue:+2|g\napp.users:alice|s\napp.requests:1|c|#env:prod\n")

// BenchmarkHandleStatsd parses and applies an 8-line packet to existing
// metrics.
func BenchmarkHandleStatsd(b *testing.B) {
	e, err := New(Config{Registry: metrics.NewRegistry(), Writer: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	e.HandleStatsd(statsdPacket)
	b.ReportAllocs()
	b.SetBytes(int64(len(statsdPacket)))
	for b.Loop() {
		e.HandleStatsd(statsdPacket)
	}
}

// BenchmarkParseStatsdLine parses lines without applying them.
func BenchmarkParseStatsdLine(b *testing.B) {
	line := []byte("app.db.query:12.5|ms|@0.5")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseStatsdLine(line); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseNumber backs the hand-written fast path of parseNumber.
func BenchmarkParseNumber(b *testing.B) {
	v := []byte("12.5")
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			parseNumber(v)
		}
	})
	b.Run("strconv", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			strconv.ParseFloat(string(v), 64)
		}
	})
}
