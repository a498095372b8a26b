package otlpout

import (
	"math"
	"slices"

	"github.com/dynometrics/dynometrics/internal/aggregate"
)

// Scales of the exponential histograms (base = 2^(2^-scale); bucket index i
// holds the magnitudes in (base^i, base^(i+1)]).
const (
	// MaxScale is the finest scale used, for series whose values are exact
	// (at most aggregate.ExactLimit of them): base 2^(2^-20), a relative
	// bucket width of 6.6e-7, the OpenTelemetry SDKs' default maximum.
	MaxScale = 20

	// SketchScale is the finest scale used for series beyond
	// aggregate.ExactLimit values, whose distribution is a DDSketch with
	// bins of relative width about 1% (aggregate.SketchAccuracy 0.5%): at
	// scale 6 a bucket is 2^(1/64) ≈ 1.0109 wide, the finest scale whose
	// buckets are not narrower than a sketch bin, so the histogram claims no
	// precision the sketch does not have and a bin overlaps at most two
	// buckets.
	SketchScale = 6

	// MinScale is the coarsest scale: at -10 two buckets cover every float64.
	MinScale = -10

	// DefaultMaxBuckets bounds the buckets of each sign (positive and
	// negative) of one data point, as the OpenTelemetry SDKs' default
	// MaxSize: a series whose values span a wider range gets a coarser scale.
	DefaultMaxBuckets = 160
)

// expHist is an OTLP exponential histogram: exact count, sum, min and max, a
// zero count, and bucket counts per sign at one scale. Not safe for
// concurrent use.
type expHist struct {
	scale         int32
	count, zero   uint64
	sum, min, max float64
	b             [2]buckets // by sign: b[positive], b[negative]
}

// The signs, indexes of expHist.b.
const (
	positive = 0
	negative = 1
)

// buckets are the counts of the consecutive bucket indexes offset,
// offset+1, …; the first and last counts are non-zero unless empty.
type buckets struct {
	offset int32
	counts []uint64
}

// vc is one value of a distribution (a raw value or a sketch bin's
// representative value) with its count, and its bucket index at the
// starting scale.
type vc struct {
	idx   int32
	sign  uint8 // positive or negative
	count uint64
}

// mapToIndex returns the index of the bucket holding the magnitude m > 0 at
// scale: the i with base^i < m <= base^(i+1). It is exact for powers of two
// and for every scale <= 0 (math.Frexp reads the exponent, subnormal values
// included); for scale > 0 it rounds log2(m)·2^scale, off by at most one
// bucket only for m within about 1e-15 relative of a boundary.
func mapToIndex(m float64, scale int32) int32 {
	frac, exp := math.Frexp(m) // m = frac·2^exp, frac in [0.5, 1)
	if frac == 0.5 {
		// m = 2^(exp-1) is the upper bound of bucket (exp-1)·2^scale - 1.
		if scale <= 0 {
			return int32(exp-2) >> -scale
		}
		return int32(exp-1)<<scale - 1
	}
	if scale <= 0 {
		// m in (2^(exp-1), 2^exp): bucket exp-1 at scale 0.
		return int32(exp-1) >> -scale
	}
	// ceil(log2(m)·2^scale) - 1, with log2(m) = exp + log2(frac).
	return int32(exp)<<scale + int32(math.Ceil(math.Log2(frac)*float64(int64(1)<<scale))) - 1
}

// build fills h with the distribution of the Measure series s: exact count,
// sum, min and max from s, buckets from s.State.Values. Values equal to zero
// go to the zero count. Series with at most aggregate.ExactLimit values start
// at MaxScale and each raw value lands in its own bucket; beyond that each
// sketch bin's representative value (clamped to [Min, Max], which moves it
// closer to the values it stands for) starts at SketchScale. The scale is
// then lowered until each sign fits in maxBuckets buckets. scratch is reused
// between calls.
func (h *expHist) build(s *aggregate.Series, maxBuckets int, scratch *[]vc) {
	*h = expHist{count: uint64(max(s.Count, 0)), sum: s.Sum, min: s.Min, max: s.Max, b: h.b}
	scale := int32(MaxScale)
	if s.Count > aggregate.ExactLimit {
		scale = SketchScale
	}
	vals := (*scratch)[:0]
	var total uint64
	if s.State != nil {
		s.State.Values(func(v, c float64) bool {
			n := uint64(math.Round(c))
			if n == 0 {
				return true
			}
			total += n
			v = min(max(v, s.Min), s.Max)
			switch {
			case v == 0:
				h.zero += n
			case v > 0:
				vals = append(vals, vc{idx: mapToIndex(v, scale), count: n})
			default:
				vals = append(vals, vc{idx: mapToIndex(-v, scale), sign: negative, count: n})
			}
			return true
		})
	}
	*scratch = vals
	if total != h.count {
		// Only a Series without State (or a State that disagrees with its
		// own count) gets here: keep the exact count and put the
		// difference in no bucket rather than invent values.
		h.count = total
	}
	lo, hi := [2]int32{math.MaxInt32, math.MaxInt32}, [2]int32{math.MinInt32, math.MinInt32}
	for _, x := range vals {
		lo[x.sign], hi[x.sign] = min(lo[x.sign], x.idx), max(hi[x.sign], x.idx)
	}
	shift := int32(0)
	for scale-shift > MinScale && (!fits(lo[positive], hi[positive], shift, maxBuckets) || !fits(lo[negative], hi[negative], shift, maxBuckets)) {
		shift++
	}
	h.scale = scale - shift
	for i := range h.b {
		h.b[i].counts = h.b[i].counts[:0]
		if lo[i] <= hi[i] {
			h.b[i].offset = lo[i] >> shift
			h.b[i].counts = grow(h.b[i].counts, int(hi[i]>>shift-lo[i]>>shift)+1)
		}
	}
	for _, x := range vals {
		b := &h.b[x.sign]
		b.counts[x.idx>>shift-b.offset] += x.count
	}
}

// fits says whether indexes lo..hi take at most n buckets after shifting
// right by shift (an empty range, lo > hi, always fits).
func fits(lo, hi, shift int32, n int) bool {
	return lo > hi || int64(hi>>shift)-int64(lo>>shift)+1 <= int64(n)
}

// grow returns s resized to n zeroed elements, reusing its array.
func grow(s []uint64, n int) []uint64 {
	s = slices.Grow(s[:0], n)[:n]
	clear(s)
	return s
}

// bounds returns the first and last index of b; lo > hi when b is empty.
func (b *buckets) bounds() (lo, hi int32) {
	if len(b.counts) == 0 {
		return math.MaxInt32, math.MinInt32
	}
	return b.offset, b.offset + int32(len(b.counts)) - 1
}

// span returns the index range that a (shifted right by da) and b (by db)
// cover together; lo > hi when both are empty.
func span(a *buckets, da int32, b *buckets, db int32) (lo, hi int32) {
	lo, hi = math.MaxInt32, math.MinInt32
	if a0, a1 := a.bounds(); a0 <= a1 {
		lo, hi = a0>>da, a1>>da
	}
	if b0, b1 := b.bounds(); b0 <= b1 {
		lo, hi = min(lo, b0>>db), max(hi, b1>>db)
	}
	return lo, hi
}

// clone returns a deep copy of h.
func (h *expHist) clone() expHist {
	c := *h
	for i := range c.b {
		c.b[i].counts = append([]uint64(nil), h.b[i].counts...)
	}
	return c
}

// merge adds o into h, at the finer of the two scales that lets each sign of
// the merged histogram fit in maxBuckets buckets: the cumulative histogram
// of a series is the merge of its delta histograms.
func (h *expHist) merge(o *expHist, maxBuckets int) {
	if o.count == 0 {
		return
	}
	if h.count == 0 {
		*h = o.clone()
		return
	}
	fitsAt := func(scale int32) bool {
		for i := range h.b {
			if lo, hi := span(&h.b[i], h.scale-scale, &o.b[i], o.scale-scale); !fits(lo, hi, 0, maxBuckets) {
				return false
			}
		}
		return true
	}
	scale := min(h.scale, o.scale)
	for scale > MinScale && !fitsAt(scale) {
		scale--
	}
	dh, do := h.scale-scale, o.scale-scale
	inPlace := dh == 0 && within(&o.b[positive], do, &h.b[positive]) && within(&o.b[negative], do, &h.b[negative])
	for i := range h.b {
		if inPlace {
			// The steady state of a cumulative series: add in place.
			addInto(&h.b[i], &o.b[i], do)
		} else {
			h.b[i] = combine(&h.b[i], dh, &o.b[i], do)
		}
	}
	h.scale = scale
	h.count += o.count
	h.zero += o.zero
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// within says whether the buckets of b, shifted right by db, fall inside
// a's index range.
func within(b *buckets, db int32, a *buckets) bool {
	b0, b1 := b.bounds()
	if b0 > b1 {
		return true
	}
	a0, a1 := a.bounds()
	return a0 <= a1 && b0>>db >= a0 && b1>>db <= a1
}

// addInto adds b (shifted right by db) into a, whose range holds it.
func addInto(a, b *buckets, db int32) {
	for i, c := range b.counts {
		a.counts[(b.offset+int32(i))>>db-a.offset] += c
	}
}

// combine returns the sum of a (shifted right by da) and b (by db).
func combine(a *buckets, da int32, b *buckets, db int32) buckets {
	lo, hi := span(a, da, b, db)
	if lo > hi {
		return buckets{}
	}
	out := buckets{offset: lo, counts: make([]uint64, int(hi-lo)+1)}
	addInto(&out, a, da)
	addInto(&out, b, db)
	return out
}
