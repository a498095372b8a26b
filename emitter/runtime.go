package emitter

import (
	"math"
	rtmetrics "runtime/metrics"
	"strconv"
	"time"
)

// runtimeMetric maps one runtime/metrics sample to output pairs.
type runtimeMetric struct {
	source string // runtime/metrics name
	name   string // emitted name, before the prefix
	kind   uint8  // rtGauge, rtCounter, rtPauses
	unit   string
}

const (
	rtGauge   = iota // sample#name=value
	rtCounter        // count#name=change since the previous emission
	rtPauses         // histogram of pauses: count#name.count, sample#name.perc99, sample#name.max
)

// runtimeMetrics is what Config.Runtime adds, read with runtime/metrics
// (which, unlike runtime.ReadMemStats, does not stop the world).
var runtimeMetrics = []runtimeMetric{
	{"/sched/goroutines:goroutines", "go.goroutines", rtGauge, ""},
	{"/memory/classes/heap/objects:bytes", "go.memory.heap_objects", rtGauge, "bytes"},
	{"/memory/classes/total:bytes", "go.memory.total", rtGauge, "bytes"},
	{"/gc/heap/goal:bytes", "go.gc.heap_goal", rtGauge, "bytes"},
	{"/gc/cycles/total:gc-cycles", "go.gc.cycles", rtCounter, ""},
	{"/sched/pauses/total/gc:seconds", "go.gc.pause", rtPauses, "ms"},
}

// runtimeStats holds the runtime/metrics samples and the previous cumulative
// values. Used under the Emitter's lock.
type runtimeStats struct {
	samples []rtmetrics.Sample
	entries []*entry
	last    []uint64   // previous counter values
	prev    [][]uint64 // previous histogram bucket counts
	delta   []uint64
	read    uint64 // emission generation of the last Read
}

func newRuntimeStats(prefix string) *runtimeStats {
	r := &runtimeStats{
		samples: make([]rtmetrics.Sample, len(runtimeMetrics)),
		last:    make([]uint64, len(runtimeMetrics)),
		prev:    make([][]uint64, len(runtimeMetrics)),
	}
	for i, m := range runtimeMetrics {
		r.samples[i].Name = m.source
		full := appendName(nil, prefix, m.name)
		en := &entry{name: m.name, sortBy: string(full), kind: kindRuntime, rt: i}
		switch m.kind {
		case rtGauge:
			en.keys = []string{pairKey("sample", full, "")}
		case rtCounter:
			en.keys = []string{pairKey("count", full, "")}
		case rtPauses:
			en.keys = []string{pairKey("count", full, ".count"), pairKey("sample", full, ".perc99"), pairKey("sample", full, ".max")}
		}
		r.entries = append(r.entries, en)
	}
	return r
}

func (r *runtimeStats) emit(e *Emitter, en *entry) {
	if r.read != e.gen {
		rtmetrics.Read(r.samples)
		r.read = e.gen
	}
	i := en.rt
	m, s := runtimeMetrics[i], r.samples[i]
	switch s.Value.Kind() {
	case rtmetrics.KindUint64:
		v := s.Value.Uint64()
		if m.kind == rtCounter {
			v, r.last[i] = v-r.last[i], v
		}
		e.pair = append(strconv.AppendUint(append(e.pair[:0], en.keys[0]...), v, 10), m.unit...)
		e.addPair()
	case rtmetrics.KindFloat64:
		e.addFloat(en.keys[0], s.Value.Float64(), m.unit)
	case rtmetrics.KindFloat64Histogram:
		r.emitPauses(e, en, s.Value.Float64Histogram())
	}
}

// emitPauses prints the pauses since the previous emission: their number, and
// the 99th percentile and maximum as the upper bound of the bucket they fall
// in (runtime/metrics keeps buckets, not values), in milliseconds.
func (r *runtimeStats) emitPauses(e *Emitter, en *entry, h *rtmetrics.Float64Histogram) {
	i := en.rt
	prev := r.prev[i]
	if len(prev) != len(h.Counts) {
		prev = make([]uint64, len(h.Counts))
		r.prev[i] = prev
	}
	r.delta = r.delta[:0]
	var n uint64
	for j, c := range h.Counts {
		d := c - prev[j]
		prev[j] = c
		r.delta = append(r.delta, d)
		n += d
	}
	e.addInt(en.keys[0], int64(n))
	if n == 0 {
		return
	}
	rank := uint64(math.Ceil(0.99 * float64(n)))
	var cum uint64
	p99, mx := -1, -1
	for j, d := range r.delta {
		cum += d
		if p99 < 0 && cum >= rank {
			p99 = j
		}
		if d > 0 {
			mx = j
		}
	}
	ms := float64(time.Millisecond) / float64(time.Second)
	e.addFloat(en.keys[1], bucketBound(h.Buckets, p99)/ms, "ms")
	e.addFloat(en.keys[2], bucketBound(h.Buckets, mx)/ms, "ms")
}

// bucketBound returns the upper bound of bucket j, or its lower bound when
// the upper one is +Inf.
func bucketBound(b []float64, j int) float64 {
	if hi := b[j+1]; !math.IsInf(hi, 1) {
		return hi
	}
	return b[j]
}
