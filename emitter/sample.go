package emitter

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	metrics "github.com/rcrowley/go-metrics"
)

// DefaultSampleSize is the number of values a per-interval Sample keeps for
// percentiles. Count, sum, min, max and mean stay exact beyond it; once more
// values arrive in one interval, the kept values are a uniform random
// reservoir of them (Vitter's algorithm R) and the surplus is counted in
// Stats.ReservoirReplaced. 1028 matches go-metrics' own reservoirs.
const DefaultSampleSize = 1028

// Sample is a go-metrics Sample whose statistics cover one emission
// interval: the Emitter reads and clears it at each emission, so the
// percentiles it prints describe only the values recorded since the previous
// emission (go-metrics' ExpDecaySample, in contrast, decays over minutes and
// never clears). Updates racing with an emission land either in the interval
// being emitted or in the next one, never nowhere.
//
// Between emissions the go-metrics read methods (Count, Mean, Percentile, …)
// describe the interval so far. A Sample is safe for concurrent use.
type Sample struct {
	mu       sync.Mutex
	size     int     // reservoir capacity
	scale    float64 // divide raw values by this when emitting (1e6 for ns → ms)
	unit     string  // unit suffix when emitting
	values   []int64 // reservoir; grows up to size, then replaced at random
	count    int64   // values recorded this interval (exact)
	sum      int64
	sumSq    float64
	min, max int64
	replaced uint64 // values of this interval beyond the reservoir's size
}

// NewSample returns a per-interval Sample keeping up to DefaultSampleSize
// values per interval for percentiles.
func NewSample() *Sample { return NewSampleSize(DefaultSampleSize) }

// NewSampleSize returns a per-interval Sample keeping up to size values per
// interval for percentiles; size below 1 means DefaultSampleSize.
func NewSampleSize(size int) *Sample {
	if size < 1 {
		size = DefaultSampleSize
	}
	return &Sample{size: size, scale: 1}
}

// Update records one value.
func (s *Sample) Update(v int64) {
	s.mu.Lock()
	s.count++
	s.sum += v
	f := float64(v)
	s.sumSq += f * f
	if s.count == 1 {
		s.min, s.max = v, v
	}
	s.min, s.max = min(s.min, v), max(s.max, v)
	if len(s.values) < s.size {
		s.values = append(s.values, v)
	} else {
		s.replaced++
		if j := rand.Int64N(s.count); j < int64(s.size) {
			s.values[j] = v
		}
	}
	s.mu.Unlock()
}

// intervalStats is what one emission takes out of a Sample: the exact
// statistics, and how many values did not fit in the reservoir.
type intervalStats struct {
	count, sum, min, max int64
	replaced             uint64
}

// drain copies the interval's values into dst[:0], resets the interval and
// returns the values and the interval's statistics. The reservoir keeps its
// capacity, so steady-state emission allocates nothing here.
func (s *Sample) drain(dst []int64) ([]int64, intervalStats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dst = append(dst[:0], s.values...)
	st := intervalStats{count: s.count, sum: s.sum, min: s.min, max: s.max, replaced: s.replaced}
	s.clearLocked()
	return dst, st
}

// Clear discards the values recorded in the current interval.
func (s *Sample) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearLocked()
}

func (s *Sample) clearLocked() {
	s.values = s.values[:0]
	s.count, s.sum, s.sumSq, s.min, s.max, s.replaced = 0, 0, 0, 0, 0, 0
}

// locked returns f() computed with mu held.
func locked[T any](mu *sync.Mutex, f func() T) T {
	mu.Lock()
	defer mu.Unlock()
	return f()
}

// Count returns the number of values recorded in the current interval.
func (s *Sample) Count() int64 { return locked(&s.mu, func() int64 { return s.count }) }

// Max returns the largest value of the current interval, 0 when empty.
func (s *Sample) Max() int64 { return locked(&s.mu, func() int64 { return s.max }) }

// Min returns the smallest value of the current interval, 0 when empty.
func (s *Sample) Min() int64 { return locked(&s.mu, func() int64 { return s.min }) }

// Sum returns the sum of the values of the current interval.
func (s *Sample) Sum() int64 { return locked(&s.mu, func() int64 { return s.sum }) }

// Mean returns the exact mean of the current interval, 0 when empty.
func (s *Sample) Mean() float64 { return locked(&s.mu, s.meanLocked) }

func (s *Sample) meanLocked() float64 {
	if s.count == 0 {
		return 0
	}
	return float64(s.sum) / float64(s.count)
}

// Variance returns the population variance of the current interval.
func (s *Sample) Variance() float64 {
	return locked(&s.mu, func() float64 {
		m := s.meanLocked()
		return math.Max(0, s.sumSq/float64(max(s.count, 1))-m*m) // 0 when empty: sumSq is 0
	})
}

// StdDev returns the population standard deviation of the current interval.
func (s *Sample) StdDev() float64 { return math.Sqrt(s.Variance()) }

// Percentile returns the p-th quantile (0 ≤ p ≤ 1) of the kept values of the
// current interval, interpolated linearly between the closest ranks.
func (s *Sample) Percentile(p float64) float64 {
	return s.Percentiles([]float64{p})[0]
}

// Percentiles returns the quantiles ps of the current interval, like
// Percentile.
func (s *Sample) Percentiles(ps []float64) []float64 {
	v := s.Values()
	slices.Sort(v)
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = quantile(v, p)
	}
	return out
}

// Size returns the number of values kept for percentiles in the current
// interval.
func (s *Sample) Size() int { return locked(&s.mu, func() int { return len(s.values) }) }

// Snapshot returns a read-only copy of the current interval.
func (s *Sample) Snapshot() metrics.Sample {
	return locked(&s.mu, func() metrics.Sample { return metrics.NewSampleSnapshot(s.count, slices.Clone(s.values)) })
}

// Values returns a copy of the values kept in the current interval.
func (s *Sample) Values() []int64 {
	return locked(&s.mu, func() []int64 { return slices.Clone(s.values) })
}

// quantile returns the p-quantile of sorted values, interpolating linearly
// between the two closest ranks (NumPy's default, "type 7"). It returns 0 for
// no values.
func quantile(sorted []int64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	h := min(max(p, 0), 1) * float64(n-1)
	lo := int(h)
	if lo+1 >= n {
		return float64(sorted[n-1])
	}
	frac := h - float64(lo)
	return float64(sorted[lo]) + frac*float64(sorted[lo+1]-sorted[lo])
}

// NewHistogram returns a go-metrics Histogram backed by a per-interval Sample:
// the Emitter prints its statistics over each interval. Register it yourself,
// or use GetOrRegisterHistogram.
func NewHistogram() metrics.Histogram { return metrics.NewHistogram(NewSample()) }

// GetOrRegisterHistogram returns the Histogram registered under name in r, or
// registers a new per-interval one (see NewHistogram). A nil r means
// metrics.DefaultRegistry, like go-metrics.
func GetOrRegisterHistogram(name string, r metrics.Registry) metrics.Histogram {
	r = cmp.Or(r, metrics.DefaultRegistry)
	return r.GetOrRegister(name, NewHistogram).(metrics.Histogram)
}

// newScaledHistogram is a per-interval histogram whose values are recorded
// multiplied by scale (to keep fractions in int64 storage) and emitted divided
// by it. The statsd bridge uses it for "|h" values.
func newScaledHistogram(scale float64) metrics.Histogram {
	s := NewSample()
	s.scale = scale
	return metrics.NewHistogram(s)
}

// Timer is a go-metrics Timer backed by a per-interval Sample: the Emitter
// prints count, min, mean, median, perc95, perc99 and max of the durations
// recorded since the previous emission, in milliseconds. Its statistics
// methods (Count, Min, Max, Mean, Sum, Percentile, StdDev, …) are its
// Sample's, over the current interval, in nanoseconds. The rates (Rate1, …)
// come from an ordinary go-metrics Meter. Safe for concurrent use. Create it
// with NewTimer or GetOrRegisterTimer.
type Timer struct {
	*intervalSample
	meter metrics.Meter
}

// intervalSample lets Timer embed its Sample without a field named Sample,
// which would collide with the Sample method.
type intervalSample = Sample

var _ metrics.Timer = (*Timer)(nil)

// NewTimer returns a per-interval Timer. Like any go-metrics timer it owns a
// Meter; the registry's Unregister stops it.
func NewTimer() *Timer {
	s := NewSample()
	s.scale, s.unit = float64(time.Millisecond), "ms"
	return &Timer{intervalSample: s, meter: metrics.NewMeter()}
}

// GetOrRegisterTimer returns the Timer registered under name in r, or
// registers a new per-interval Timer. A nil r means metrics.DefaultRegistry.
func GetOrRegisterTimer(name string, r metrics.Registry) metrics.Timer {
	r = cmp.Or(r, metrics.DefaultRegistry)
	return r.GetOrRegister(name, func() metrics.Timer { return NewTimer() }).(metrics.Timer)
}

// Sample returns the per-interval sample of durations in nanoseconds.
func (t *Timer) Sample() *Sample { return t.intervalSample }

// Rate1 returns the one-minute moving average rate of events per second.
func (t *Timer) Rate1() float64 { return t.meter.Rate1() }

// Rate5 returns the five-minute moving average rate of events per second.
func (t *Timer) Rate5() float64 { return t.meter.Rate5() }

// Rate15 returns the fifteen-minute moving average rate of events per second.
func (t *Timer) Rate15() float64 { return t.meter.Rate15() }

// RateMean returns the mean rate of events per second since creation.
func (t *Timer) RateMean() float64 { return t.meter.RateMean() }

// Snapshot returns a read-only copy of the current interval.
func (t *Timer) Snapshot() metrics.Timer {
	return metrics.NewCustomTimer(metrics.NewHistogram(t.intervalSample.Snapshot()).Snapshot(), t.meter.Snapshot())
}

// Stop stops the Timer's Meter.
func (t *Timer) Stop() { t.meter.Stop() }

// Time records the duration of f.
func (t *Timer) Time(f func()) {
	start := time.Now()
	f()
	t.Update(time.Since(start))
}

// Update records one duration.
func (t *Timer) Update(d time.Duration) {
	t.intervalSample.Update(int64(d))
	t.meter.Mark(1)
}

// UpdateSince records the time elapsed since start.
func (t *Timer) UpdateSince(start time.Time) { t.Update(time.Since(start)) }
