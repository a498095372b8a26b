package otlpout

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/dynometrics/dynometrics/internal/aggregate"
)

func TestMapToIndex(t *testing.T) {
	values := []float64{1, 2, 0.5, 1024, 3, 0.1, 1.5, 7.999, 1e-300, 5e-324, math.SmallestNonzeroFloat64 * 3,
		math.MaxFloat64, 1e308, 12, 20, 30000, 1.0000001, 0.9999999}
	for _, scale := range []int32{-10, -4, -1, 0, 1, 3, 6, 12, 20} {
		for _, v := range values {
			got := mapToIndex(v, scale)
			if want := refIndex(v, int(scale)); int(got) != want {
				// The reference uses natural logarithms; both may differ
				// only for values within rounding of a boundary, which
				// these are not (powers of two are exact in both).
				t.Errorf("mapToIndex(%g, %d) = %d, reference %d", v, scale, got, want)
			}
			if scale >= -3 && v > 1e-300 && v < 1e300 {
				lo, hi := lowerBound(got, scale), lowerBound(got+1, scale)
				if !(v > lo*(1-1e-12) && v <= hi*(1+1e-12)) {
					t.Errorf("scale %d: %g not in bucket %d (%g, %g]", scale, v, got, lo, hi)
				}
			}
		}
	}
	// A power of two is the inclusive upper bound of its bucket.
	for _, scale := range []int32{-2, 0, 3, 20} {
		for k := -20; k <= 20; k++ {
			v := math.Ldexp(1, k)
			want := k<<max(scale, 0) - 1
			if scale < 0 {
				want = (k - 1) >> -scale
			}
			if got := mapToIndex(v, scale); int(got) != want {
				t.Errorf("mapToIndex(2^%d, %d) = %d, want %d", k, scale, got, want)
			}
		}
	}
}

// distributions returns test value sets: with negatives, zeros, ties,
// skew and a wide range.
func distributions(n int, seed uint64) map[string][]float64 {
	r := rand.New(rand.NewPCG(seed, 7))
	gen := func(f func(i int) float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	return map[string][]float64{
		"lognormal latency ms": gen(func(int) float64 { return math.Exp(r.NormFloat64()*1.2 + 3) }),
		"uniform with negatives and zeros": gen(func(i int) float64 {
			if i%10 == 0 {
				return 0
			}
			return r.Float64()*200 - 100
		}),
		"integers with ties": gen(func(int) float64 { return float64(r.IntN(40)) }),
		"wide range":         gen(func(int) float64 { return math.Pow(10, r.Float64()*12-6) }),
		"all negative":       gen(func(int) float64 { return -math.Exp(r.NormFloat64()) }),
		"one value":          gen(func(int) float64 { return 42.5 }),
	}
}

// TestNearestRankExact: with at most aggregate.ExactLimit values, the
// nearest-rank value of every percentile lies in the bucket where its rank
// lands, and the histogram equals the independent reference.
func TestNearestRankExact(t *testing.T) {
	for _, n := range []int{1, 7, 100, aggregate.ExactLimit} {
		for name, values := range distributions(n, uint64(n)) {
			t.Run(name, func(t *testing.T) {
				s := seriesOf(t, values)
				var h expHist
				var scratch []vc
				h.build(&s, DefaultMaxBuckets, &scratch)
				p := toPoint(&h)
				checkHist(t, name, p, refBuild(values, MaxScale, DefaultMaxBuckets))
				sorted := slices.Sorted(slices.Values(values))
				for q := 1; q <= 100; q++ {
					r := nearestRank(q, len(sorted))
					lo, hi, zero := rankBucket(p, uint64(r))
					if !inBucket(sorted[r], lo, hi, zero, 1e-12) {
						t.Fatalf("n=%d p%d: value %v (rank %d) not in the bucket its rank lands in (%v, %v] zero=%v (scale %d)",
							n, q, sorted[r], r, lo, hi, zero, p.Scale)
					}
				}
			})
		}
	}
}

// TestNearestRankSketch: beyond ExactLimit values (a DDSketch), the
// quantiles the other outlets report lie in the bucket where their rank
// lands, the true nearest-rank value within the sketch's 0.5% of that
// bucket, and the scale is at most SketchScale.
func TestNearestRankSketch(t *testing.T) {
	for _, n := range []int{aggregate.ExactLimit + 1, 5000} {
		for name, values := range distributions(n, uint64(n)) {
			t.Run(name, func(t *testing.T) {
				s := seriesOf(t, values)
				var h expHist
				var scratch []vc
				h.build(&s, DefaultMaxBuckets, &scratch)
				p := toPoint(&h)
				sorted := slices.Sorted(slices.Values(values))
				var sum float64
				for _, v := range values {
					sum += v
				}
				if p.Count != uint64(n) || p.Min != sorted[0] || p.Max != sorted[n-1] || !near(p.Sum, sum) {
					t.Errorf("count %d min %v max %v sum %v; want %d %v %v %v", p.Count, p.Min, p.Max, p.Sum, n, sorted[0], sorted[n-1], sum)
				}
				if p.Scale > SketchScale {
					t.Errorf("scale %d finer than the sketch supports (%d)", p.Scale, SketchScale)
				}
				if total := p.Zero + sumOf(p.Pos) + sumOf(p.Neg); total != uint64(n) {
					t.Errorf("buckets hold %d values, want %d", total, n)
				}
				for _, c := range []struct {
					q   int
					got float64
				}{{50, s.Median}, {95, s.P95}, {99, s.P99}} {
					lo, hi, zero := rankBucket(p, uint64(nearestRank(c.q, n)))
					if !inBucket(c.got, lo, hi, zero, 1e-12) {
						t.Errorf("p%d: the reported quantile %v is not in the bucket its rank lands in (%v, %v] zero=%v", c.q, c.got, lo, hi, zero)
					}
				}
				for q := 1; q <= 100; q++ {
					r := nearestRank(q, n)
					lo, hi, zero := rankBucket(p, uint64(r))
					v := sorted[r]
					// DDSketch maps |v| < ~1e-308 to its zero bin; none here.
					if !inBucket(v, lo, hi, zero, aggregate.SketchAccuracy+1e-9) {
						t.Errorf("p%d: true value %v (rank %d) more than %.1f%% outside the bucket its rank lands in (%v, %v] zero=%v",
							q, v, r, aggregate.SketchAccuracy*100, lo, hi, zero)
					}
				}
			})
		}
	}
}

func sumOf(s []uint64) uint64 {
	var n uint64
	for _, c := range s {
		n += c
	}
	return n
}

// TestMergeEqualsUnion: the cumulative histogram of two buckets of exact
// values is the histogram of all their values at once.
func TestMergeEqualsUnion(t *testing.T) {
	tests := map[string]struct{ a, b []float64 }{
		"same range":           {[]float64{4, 10, 7}, []float64{5, 9}},
		"disjoint ranges":      {[]float64{1, 2, 3}, []float64{1e6, 2e6}},
		"signs and zeros":      {[]float64{-3, 0, 2}, []float64{-1e3, 0, 0, 5}},
		"one side empty":       {[]float64{0, 0}, []float64{-2.5}},
		"narrow then wide":     {[]float64{100, 100.5}, []float64{1e-3, 1e9}},
		"identical singletons": {[]float64{3}, []float64{3}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var scratch []vc
			sa, sb := seriesOf(t, tc.a), seriesOf(t, tc.b)
			var ha, hb expHist
			ha.build(&sa, 16, &scratch)
			hb.build(&sb, 16, &scratch)
			ha.merge(&hb, 16)
			checkHist(t, name, toPoint(&ha), refBuild(append(slices.Clone(tc.a), tc.b...), MaxScale, 16))
		})
	}
}

// TestBuildBoundsBuckets: whatever the spread, each sign takes at most
// MaxBuckets buckets.
func TestBuildBoundsBuckets(t *testing.T) {
	for _, maxB := range []int{2, 5, 160} {
		for name, values := range distributions(300, 3) {
			s := seriesOf(t, values)
			var h expHist
			var scratch []vc
			h.build(&s, maxB, &scratch)
			if len(h.b[positive].counts) > maxB || len(h.b[negative].counts) > maxB {
				t.Errorf("%s, max %d: %d positive and %d negative buckets", name, maxB, len(h.b[positive].counts), len(h.b[negative].counts))
			}
			checkHist(t, name, toPoint(&h), refBuild(values, MaxScale, maxB))
		}
	}
}

// lowerBound, the test's oracle, returns base^idx at scale: the exclusive lower bound of bucket
// idx (its inclusive upper bound is lowerBound(idx+1, scale)).
func lowerBound(idx, scale int32) float64 {
	if scale <= 0 {
		return math.Ldexp(1, int(idx)<<-scale)
	}
	return math.Exp2(float64(idx) / float64(int64(1)<<scale))
}
