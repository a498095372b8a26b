package otlp

import (
	"math"

	"github.com/dynometrics/dynometrics/internal/metric"
	metricspb "go.opentelemetry.io/proto/slim/otlp/metrics/v1"
)

// histogramDist turns an explicit-bucket histogram point into a
// distribution: one bin per non-empty bucket at the middle of the bucket's
// range, the range cut to the point's min and max when known (the unbounded
// first and last buckets take them as their outer edge). With exact, the
// point's min and max are the distribution's; otherwise (the difference of
// two cumulative points) the distribution's min and max are the edges of its
// first and last non-empty buckets. It returns nil for an empty point or one
// whose values cannot be placed.
func histogramDist(p *metricspb.HistogramDataPoint, exact bool) *metric.Distribution {
	if p.Count == 0 {
		return nil
	}
	lo, hi := orInf(p.Min, -1), orInf(p.Max, 1)
	if len(p.BucketCounts) == 0 {
		// Count and sum only: one bin at the mean.
		mean := *p.Sum / float64(p.Count)
		return finish(&metric.Distribution{Count: p.Count, Bins: []metric.Bin{{Value: mean, Count: p.Count}}},
			p.Sum, lo, hi, exact && p.Min != nil, exact && p.Max != nil, mean, mean)
	}
	d := &metric.Distribution{Count: p.Count, Bins: make([]metric.Bin, 0, 8)}
	first, last := math.NaN(), math.NaN()
	bounds := p.ExplicitBounds
	for i, c := range p.BucketCounts {
		if c == 0 {
			continue
		}
		bl, bh := math.Inf(-1), math.Inf(1)
		if i > 0 {
			bl = bounds[i-1]
		}
		if i < len(bounds) {
			bh = bounds[i]
		}
		bl, bh = max(bl, lo), min(bh, hi)
		if math.IsInf(bl, -1) {
			bl = bh
		}
		if math.IsInf(bh, 1) {
			bh = bl
		}
		if math.IsInf(bl, 0) || math.IsInf(bh, 0) {
			// One unbounded bucket with no min and max: only the mean is known.
			if p.Sum == nil {
				return nil
			}
			bl, bh = *p.Sum/float64(p.Count), *p.Sum/float64(p.Count)
		}
		if math.IsNaN(first) {
			first = bl
		}
		last = bh
		d.Bins = append(d.Bins, metric.Bin{Value: bl + (bh-bl)/2, Count: c})
	}
	return finish(d, p.Sum, lo, hi, exact && p.Min != nil, exact && p.Max != nil, first, last)
}

// exponentialDist turns an exponential histogram point into a distribution:
// one bin per non-empty bucket at the geometric middle of its range
// (base^(index+0.5) for the range (base^index, base^(index+1)]), zero for the
// zero bucket, in ascending order; min and max as in histogramDist. It
// returns nil for an empty point or one whose buckets lie beyond float64.
func exponentialDist(p *metricspb.ExponentialHistogramDataPoint, exact bool) *metric.Distribution {
	if p.Count == 0 {
		return nil
	}
	lo, hi := orInf(p.Min, -1), orInf(p.Max, 1)
	inv := math.Ldexp(1, -int(p.Scale)) // log2(base)
	edge := func(index float64) float64 { return math.Exp2(index * inv) }
	d := &metric.Distribution{Count: p.Count, Bins: make([]metric.Bin, 0, 16)}
	first, last := math.NaN(), math.NaN()
	add := func(bl, bh float64, c uint64) bool {
		bl, bh = max(bl, lo), min(bh, hi)
		if !finite(bl) || !finite(bh) {
			return false
		}
		if math.IsNaN(first) {
			first = bl
		}
		last = bh
		mid := bl + (bh-bl)/2
		if bl > 0 || bh < 0 {
			mid = math.Copysign(math.Sqrt(bl*bh), bl)
		}
		d.Bins = append(d.Bins, metric.Bin{Value: mid, Count: c})
		return true
	}
	neg := p.GetNegative()
	for i := len(neg.GetBucketCounts()) - 1; i >= 0; i-- {
		if c := neg.BucketCounts[i]; c > 0 {
			idx := float64(neg.Offset) + float64(i)
			if !add(-edge(idx+1), -edge(idx), c) {
				return nil
			}
		}
	}
	if p.ZeroCount > 0 && !add(0, 0, p.ZeroCount) {
		return nil
	}
	pos := p.GetPositive()
	for i, c := range pos.GetBucketCounts() {
		if c > 0 {
			idx := float64(pos.Offset) + float64(i)
			if !add(edge(idx), edge(idx+1), c) {
				return nil
			}
		}
	}
	return finish(d, p.Sum, lo, hi, exact && p.Min != nil, exact && p.Max != nil, first, last)
}

// orInf is *v, or infinity with the sign given when v is nil.
func orInf(v *float64, sign int) float64 {
	if v == nil {
		return math.Inf(sign)
	}
	return *v
}

// finish sets the distribution's sum (the point's, else the bins'), its min
// and max (the point's when exact, else the outer edges of its bins), keeps
// every bin within them, and checks that the statistics are finite.
func finish(d *metric.Distribution, sum *float64, lo, hi float64, exactLo, exactHi bool, first, last float64) *metric.Distribution {
	if sum != nil {
		d.Sum = *sum
	} else {
		for _, b := range d.Bins {
			d.Sum += b.Value * float64(b.Count)
		}
	}
	d.Min, d.Max = first, last
	if exactLo {
		d.Min = lo
	}
	if exactHi {
		d.Max = hi
	}
	if d.Min > d.Max {
		d.Min, d.Max = d.Max, d.Min
	}
	for i := range d.Bins {
		d.Bins[i].Value = min(max(d.Bins[i].Value, d.Min), d.Max)
	}
	if !finite(d.Min) || !finite(d.Max) || !finite(d.Sum) || len(d.Bins) == 0 {
		return nil
	}
	return d
}
