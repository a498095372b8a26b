package aggregate

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// ExactLimit is the number of values a Measure series keeps raw. Up to this
// many values its percentiles are exact nearest-rank; beyond it the values
// move into a DDSketch and percentiles are within SketchAccuracy relative
// error of the exact nearest-rank value.
const ExactLimit = 1000

// SketchAccuracy is the relative accuracy of the sketch a Measure series
// uses beyond ExactLimit values. The reported percentile must be within 1%
// of the exact nearest-rank value; DDSketch guarantees its accuracy for the
// bin holding the value of the requested rank, and a value on a bin boundary
// can land a rounding error beyond it, so half of 1% leaves a safe margin.
const SketchAccuracy = 0.005

// SketchMaxBins bounds the bins of each of the sketch's two stores (positive
// and negative values), which bounds a series' memory at about
// 2*SketchMaxBins*8 bytes whatever the number of values. With SketchAccuracy
// 0.005 the bins span a ratio of e^(SketchMaxBins*0.01) ≈ 6e17 between the
// smallest and largest magnitude at full accuracy; beyond that the bins of the
// smallest magnitudes are collapsed (low quantiles of positive values lose
// accuracy) and the flush counts the series in Stats.SketchSaturated.
const SketchMaxBins = 4096

// sketchMapping is shared by every sketch: immutable after creation.
var sketchMapping = func() mapping.IndexMapping {
	m, err := mapping.NewLogarithmicMapping(SketchAccuracy)
	if err != nil {
		panic(err)
	}
	return m
}()

func newSketch() *ddsketch.DDSketch {
	return ddsketch.NewDDSketch(sketchMapping,
		store.NewCollapsingLowestDenseStore(SketchMaxBins),
		store.NewCollapsingLowestDenseStore(SketchMaxBins))
}

// ErrMismatch is returned by State.Merge when the two states do not belong
// to the same series (name, source, kind and unit must all be equal).
var ErrMismatch = errors.New("aggregate: merge of different series")

// State is the mergeable aggregation state of one series (name, source) in
// one bucket. Its memory is bounded whatever the number of values added: at
// most ExactLimit raw values, then a sketch of at most SketchMaxBins bins per
// sign. States from different worker processes for the same series and
// bucket merge with Merge; MarshalBinary/UnmarshalBinary carry them between
// processes. A State is not safe for concurrent use.
type State struct {
	App    string // empty in single-app mode; see metric.Measurement.App
	Name   string
	Source string
	Unit   string
	Kind   metric.Kind

	count    int64
	sum      float64
	min      float64
	max      float64
	sumSq    float64
	last     float64
	lastTime int64 // unix nanoseconds of last

	values []float64          // Measure: raw values while count <= ExactLimit and sketch == nil
	sketch *ddsketch.DDSketch // Measure: all values once more than ExactLimit were seen
}

// NewState returns an empty state for the series.
func NewState(name, source, unit string, kind metric.Kind) *State {
	return &State{Name: name, Source: source, Unit: unit, Kind: kind}
}

// Count returns the number of values added (and merged) so far.
func (s *State) Count() int64 { return s.count }

// reset empties s for reuse, keeping its raw value buffer and sketch.
func (s *State) reset() {
	values, sk := s.values[:0], s.sketch
	if sk != nil {
		sk.Clear()
	}
	*s = State{values: values, sketch: sk}
}

// inSketch says whether the Measure values live in the sketch.
func (s *State) inSketch() bool { return s.sketch != nil && !s.sketch.IsEmpty() }

// Add adds one value observed at t, aggregating it by s.Kind. NaN and
// infinite values are ignored and reported by returning false.
func (s *State) Add(t time.Time, v float64) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return false
	}
	s.add(t.UnixNano(), v)
	return true
}

// add is Add without the finiteness check; tn is unix nanoseconds.
func (s *State) add(tn int64, v float64) {
	s.count++
	switch s.Kind {
	case metric.Counter:
		s.sum += v
	case metric.Sample:
		s.observeLast(tn, v)
	case metric.Measure:
		s.span(s.count == 1, v, v)
		s.sum += v
		s.sumSq += v * v
		s.observeLast(tn, v)
		if s.inSketch() {
			sketchAdd(s.sketch, v, 1)
		} else if len(s.values) < ExactLimit {
			s.values = append(s.values, v)
		} else {
			s.moveToSketch()
			sketchAdd(s.sketch, v, 1)
		}
	}
}

// span widens [min, max] to take in [lo, hi]; first says s held no value
// before them.
func (s *State) span(first bool, lo, hi float64) {
	if first {
		s.min, s.max = lo, hi
	} else {
		s.min, s.max = min(s.min, lo), max(s.max, hi)
	}
}

// observeLast keeps the value with the latest timestamp; on a tie the value
// seen later wins.
func (s *State) observeLast(tn int64, v float64) {
	if s.count == 1 || tn >= s.lastTime {
		s.last, s.lastTime = v, tn
	}
}

// moveToSketch moves the raw values into the sketch; once they are there
// (inSketch), there are none left and it does nothing.
func (s *State) moveToSketch() {
	if s.sketch == nil {
		s.sketch = newSketch()
	}
	for _, v := range s.values {
		sketchAdd(s.sketch, v, 1)
	}
	// Release the raw buffer: the sketch alone bounds the memory from here on.
	s.values = nil
}

// sketchAdd adds v n times, clamping magnitudes the mapping cannot index
// (beyond about 1e307) to the largest indexable one.
func sketchAdd(sk *ddsketch.DDSketch, v, n float64) {
	if err := sk.AddWithCount(v, n); err != nil {
		_ = sk.AddWithCount(math.Copysign(sketchMapping.MaxIndexableValue(), v), n)
	}
}

// Merge adds o's values into s, as if every value added to o had been added
// to s after s's own. It fails with ErrMismatch unless both states have the
// same Name, Source, Unit and Kind. Merging is exact while the combined
// count stays within ExactLimit; beyond that percentiles are within
// SketchAccuracy. o is not modified.
func (s *State) Merge(o *State) error {
	if s.App != o.App || s.Name != o.Name || s.Source != o.Source || s.Unit != o.Unit || s.Kind != o.Kind {
		return fmt.Errorf("%w: %s/%s (%s%s) with %s/%s (%s%s)", ErrMismatch,
			s.Name, s.Source, s.Kind, s.Unit, o.Name, o.Source, o.Kind, o.Unit)
	}
	if o.count == 0 {
		return nil
	}
	s.span(s.count == 0, o.min, o.max)
	if s.Kind != metric.Counter && (s.count == 0 || o.lastTime >= s.lastTime) {
		s.last, s.lastTime = o.last, o.lastTime
	}
	s.count += o.count
	s.sum += o.sum
	s.sumSq += o.sumSq
	if s.Kind != metric.Measure {
		return nil
	}
	switch {
	case !s.inSketch() && !o.inSketch() && len(s.values)+len(o.values) <= ExactLimit:
		s.values = append(s.values, o.values...)
	case o.inSketch():
		s.moveToSketch()
		if err := s.sketch.MergeWith(o.sketch); err != nil {
			return fmt.Errorf("aggregate: merge sketch of %s/%s: %w", s.Name, s.Source, err)
		}
	default:
		s.moveToSketch()
		for _, v := range o.values {
			sketchAdd(s.sketch, v, 1)
		}
	}
	return nil
}

// Series returns the flushed statistics of s. Only the fields meaningful for
// s.Kind are set (see Series); the others are zero. It may reorder s's raw
// values.
func (s *State) Series() Series {
	out := Series{App: s.App, Name: s.Name, Source: s.Source, Unit: s.Unit, Kind: s.Kind, Count: s.count}
	switch s.Kind {
	case metric.Counter:
		out.Sum = s.sum
	case metric.Sample:
		out.Last = s.last
	case metric.Measure:
		out.Sum, out.Min, out.Max, out.SumSquares, out.Last = s.sum, s.min, s.max, s.sumSq, s.last
		if s.inSketch() {
			// The exact value lies within [min, max], so clamping the
			// estimate to it can only bring it closer.
			out.Median = clamp(sketchRank(s.sketch, nearestRank(50, s.count)), s.min, s.max)
			out.P95 = clamp(sketchRank(s.sketch, nearestRank(95, s.count)), s.min, s.max)
			out.P99 = clamp(sketchRank(s.sketch, nearestRank(99, s.count)), s.min, s.max)
		} else if len(s.values) > 0 {
			slices.Sort(s.values)
			n := int64(len(s.values))
			out.Median = s.values[nearestRank(50, n)]
			out.P95 = s.values[nearestRank(95, n)]
			out.P99 = s.values[nearestRank(99, n)]
		}
	}
	return out
}

// Values calls f with the distribution of a metric.Measure state in
// ascending order of value: each raw value with count 1 while the state is
// exact (at most ExactLimit values), else each sketch bin's representative
// value (within SketchAccuracy of every value in the bin) with the bin's
// count. The counts add up to the state's count. It stops when f returns
// false. It may reorder the raw values; it does not otherwise modify s.
func (s *State) Values(f func(value, count float64) bool) {
	if s.Kind != metric.Measure {
		return
	}
	if !s.inSketch() {
		slices.Sort(s.values)
		for _, v := range s.values {
			if !f(v, 1) {
				return
			}
		}
		return
	}
	type bin struct {
		index int
		count float64
	}
	bins := func(st store.Store) []bin {
		var out []bin
		st.ForEach(func(i int, c float64) bool {
			if c > 0 {
				out = append(out, bin{i, c})
			}
			return false
		})
		slices.SortFunc(out, func(x, y bin) int { return x.index - y.index })
		return out
	}
	// Negative values are stored by magnitude: ascending values are
	// descending magnitudes.
	neg := bins(s.sketch.GetNegativeValueStore())
	for i := len(neg) - 1; i >= 0; i-- {
		if !f(-s.sketch.Value(neg[i].index), neg[i].count) {
			return
		}
	}
	if z := s.sketch.GetZeroCount(); z > 0 && !f(0, z) {
		return
	}
	for _, b := range bins(s.sketch.GetPositiveValueStore()) {
		if !f(s.sketch.Value(b.index), b.count) {
			return
		}
	}
}

// saturated says whether the sketch's stores reached SketchMaxBins, so that
// the lowest magnitudes may have been collapsed.
func (s *State) saturated() bool {
	if !s.inSketch() {
		return false
	}
	for _, st := range []store.Store{s.sketch.GetPositiveValueStore(), s.sketch.GetNegativeValueStore()} {
		lo, err1 := st.MinIndex()
		hi, err2 := st.MaxIndex()
		if err1 == nil && err2 == nil && hi-lo+1 >= SketchMaxBins {
			return true
		}
	}
	return false
}

// nearestRank returns the 0-based index of the p-th percentile (0 < p <= 100)
// of n sorted values by the nearest-rank method: ceil(p/100*n) - 1, computed
// in integers so that no rounding error moves it.
func nearestRank(p, n int64) int64 {
	r := (p*n+99)/100 - 1
	return max(r, 0)
}

// sketchRank returns the sketch's estimate of the value at 0-based rank r in
// ascending order. DDSketch's own GetValueAtQuantile uses rank q*(n-1), which
// can be one rank off nearest-rank; on skewed data one rank can be far more
// than 1% away, so the rank is resolved here against the stores directly.
func sketchRank(sk *ddsketch.DDSketch, r int64) float64 {
	rank := float64(r)
	neg := sk.GetNegativeValueStore()
	negCount := neg.TotalCount()
	switch {
	case rank < negCount:
		// Negative values are stored by magnitude: ascending values are
		// descending magnitudes.
		return -sk.Value(neg.KeyAtRank(negCount - 1 - rank))
	case rank < negCount+sk.GetZeroCount():
		return 0
	default:
		return sk.Value(sk.GetPositiveValueStore().KeyAtRank(rank - negCount - sk.GetZeroCount()))
	}
}

func clamp(v, lo, hi float64) float64 { return max(lo, min(v, hi)) }

// AddDistribution merges a pre-aggregated distribution observed at t (an OTLP
// histogram point) into a metric.Measure state: count, sum, min and max are
// exact; each bin's representative value enters the raw values (while the
// total stays within ExactLimit) or the sketch with its count, so percentiles
// are those of the representatives. The sum of squares is estimated from the
// representatives, and the distribution's mean becomes the series' last
// value. An empty distribution, a state of another kind, or non-finite
// statistics add nothing and return false.
func (s *State) AddDistribution(t time.Time, d *metric.Distribution) bool {
	if d == nil || !validDist(&metric.Measurement{Kind: s.Kind, Dist: d}) {
		return false
	}
	s.addDist(t.UnixNano(), d)
	return true
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// addDist is AddDistribution without the checks; tn is unix nanoseconds.
func (s *State) addDist(tn int64, d *metric.Distribution) {
	n := int64(d.Count)
	s.span(s.count == 0, d.Min, d.Max)
	s.count += n
	s.sum += d.Sum
	mean := d.Sum / float64(d.Count)
	if s.count == n || tn >= s.lastTime {
		s.last, s.lastTime = mean, tn
	}
	if !s.inSketch() && int64(len(s.values))+n <= ExactLimit {
		for _, b := range d.Bins {
			s.sumSq += float64(b.Count) * b.Value * b.Value
			for range b.Count {
				s.values = append(s.values, b.Value)
			}
		}
		return
	}
	s.moveToSketch()
	for _, b := range d.Bins {
		s.sumSq += float64(b.Count) * b.Value * b.Value
		sketchAdd(s.sketch, b.Value, float64(b.Count))
	}
}

// validDist says whether m.Dist can be merged: a Measure with a non-empty
// distribution of finite statistics.
func validDist(m *metric.Measurement) bool {
	d := m.Dist
	return m.Kind == metric.Measure && d.Count > 0 && d.Count <= math.MaxInt64/2 &&
		finite(d.Sum) && finite(d.Min) && finite(d.Max)
}
