package otlpout

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/otlpout/otlptest"
	"github.com/dynometrics/dynometrics/internal/outlet"
	"github.com/dynometrics/dynometrics/internal/testproc"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// flush aggregates ms with 60 s buckets and returns every bucket, oldest
// first: real Series with their State, as the worker hands them over.
func flush(t testing.TB, ms []metric.Measurement) []*aggregate.Bucket {
	t.Helper()
	agg, err := aggregate.New(aggregate.Config{Resolution: time.Minute, Grace: time.Second,
		MaxAge: 24 * time.Hour, Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	agg.Add(ms)
	if st := agg.Stats(); st.Added != uint64(len(ms)) {
		t.Fatalf("aggregator added %d of %d measurements: %+v", st.Added, len(ms), st)
	}
	return agg.FlushAll()
}

func m(kind metric.Kind, name, source string, at time.Time, v float64, unit string) metric.Measurement {
	return metric.Measurement{Name: name, Source: source, Time: at, Kind: kind, Value: v, Unit: unit}
}

// measures returns one measure# measurement per value.
func measures(name, source string, at time.Time, unit string, values ...float64) []metric.Measurement {
	var out []metric.Measurement
	for i, v := range values {
		out = append(out, m(metric.Measure, name, source, at.Add(time.Duration(i)*time.Microsecond), v, unit))
	}
	return out
}

// seriesOf returns the only series of a one-series bucket list.
func seriesOf(t testing.TB, values []float64) aggregate.Series {
	t.Helper()
	bs := flush(t, measures("x", "web.1", t0.Add(time.Second), "ms", values...))
	if len(bs) != 1 || len(bs[0].Series) != 1 {
		t.Fatalf("want one bucket with one series, got %d buckets", len(bs))
	}
	return bs[0].Series[0]
}

// testLogger returns a logger that writes into a buffer.
func testLogger() (*slog.Logger, *testproc.LimitedBuffer) {
	var b testproc.LimitedBuffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

// newOutlet starts an outlet that sends to r, with a fast queue.
func newOutlet(t testing.TB, r *otlptest.Receiver, cfg Config) (*Outlet, *testproc.LimitedBuffer) {
	t.Helper()
	log, logs := testLogger()
	cfg.Endpoint = r.URL + otlptest.Path
	cfg.Logger = log
	if cfg.Queue.Backoff == nil {
		cfg.Queue.Backoff = func(int) time.Duration { return 5 * time.Millisecond }
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return t0.Add(time.Hour) }
	}
	if cfg.Queue.Now == nil {
		cfg.Queue.Now = cfg.Now
	}
	o, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Close(context.Background()) })
	return o, logs
}

func closeOutlet(t testing.TB, o *Outlet) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// byKey indexes points by Key and time; it fails on duplicates.
func byKey(t testing.TB, ps []otlptest.Point) map[string]otlptest.Point {
	t.Helper()
	out := map[string]otlptest.Point{}
	for _, p := range ps {
		k := p.Key() + "@" + p.Time.UTC().Format("15:04:05")
		if _, dup := out[k]; dup {
			t.Errorf("point %s received twice", k)
		}
		out[k] = p
	}
	return out
}

// --- an independent model of exponential histograms, for the checks ---

// refIndex is the bucket index of magnitude v > 0 at scale, computed with
// natural logarithms (the code under test uses Log2), exact for powers of
// two. The exponent is split off first: math.Log is wrong for subnormal
// numbers on amd64 (it gives log(2^-1022·…) for 1.5e-323).
func refIndex(v float64, scale int) int {
	frac, exp := math.Frexp(v)
	if frac == 0.5 {
		k := exp - 1 // v = 2^k: the upper bound of its bucket
		if scale >= 0 {
			return k<<scale - 1
		}
		return (k - 1) >> -scale
	}
	return int(math.Ceil((float64(exp)+math.Log(frac)/math.Ln2)*math.Pow(2, float64(scale)))) - 1
}

// refBound is base^i at scale, computed with math.Pow.
func refBound(i, scale int) float64 {
	return math.Pow(2, float64(i)*math.Pow(2, -float64(scale)))
}

type refHist struct {
	scale              int
	zero               uint64
	posOffset, negOff  int
	pos, neg           []uint64
	count              uint64
	sum, minV, maxV    float64
	hasValues, hasNegs bool
}

// refBuild is what the histogram of exact values must be: the finest scale
// at most maxScale at which each sign's indexes span at most maxBuckets.
func refBuild(values []float64, maxScale, maxBuckets int) refHist {
	h := refHist{minV: math.Inf(1), maxV: math.Inf(-1)}
	for _, v := range values {
		h.count++
		h.sum += v
		h.minV, h.maxV = math.Min(h.minV, v), math.Max(h.maxV, v)
	}
	fitsAt := func(s int) bool {
		for _, neg := range []bool{false, true} {
			lo, hi, any := math.MaxInt, math.MinInt, false
			for _, v := range values {
				if v == 0 || (v < 0) != neg {
					continue
				}
				i := refIndex(math.Abs(v), s)
				lo, hi, any = min(lo, i), max(hi, i), true
			}
			if any && hi-lo+1 > maxBuckets {
				return false
			}
		}
		return true
	}
	h.scale = maxScale
	for h.scale > MinScale && !fitsAt(h.scale) {
		h.scale--
	}
	pos, neg := map[int]uint64{}, map[int]uint64{}
	for _, v := range values {
		switch {
		case v == 0:
			h.zero++
		case v > 0:
			pos[refIndex(v, h.scale)]++
		default:
			neg[refIndex(-v, h.scale)]++
		}
	}
	dense := func(m map[int]uint64) (int, []uint64) {
		if len(m) == 0 {
			return 0, nil
		}
		keys := make([]int, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Ints(keys)
		out := make([]uint64, keys[len(keys)-1]-keys[0]+1)
		for k, c := range m {
			out[k-keys[0]] = c
		}
		return keys[0], out
	}
	h.posOffset, h.pos = dense(pos)
	h.negOff, h.neg = dense(neg)
	return h
}

// checkHist compares a received histogram point with the reference.
func checkHist(t *testing.T, what string, p otlptest.Point, want refHist) {
	t.Helper()
	if p.Count != want.count || !p.HasSum || !near(p.Sum, want.sum) || !p.HasMin || p.Min != want.minV || !p.HasMax || p.Max != want.maxV {
		t.Errorf("%s: count %d sum %v (%v) min %v max %v; want %d %v %v %v", what, p.Count, p.Sum, p.HasSum, p.Min, p.Max, want.count, want.sum, want.minV, want.maxV)
	}
	if int(p.Scale) != want.scale || p.Zero != want.zero || p.ZeroThreshold != 0 {
		t.Errorf("%s: scale %d zero %d threshold %v; want %d %d 0", what, p.Scale, p.Zero, p.ZeroThreshold, want.scale, want.zero)
	}
	if len(want.pos) > 0 && (int(p.PosOffset) != want.posOffset || !slices.Equal(p.Pos, want.pos)) {
		t.Errorf("%s: positive offset %d %v; want %d %v", what, p.PosOffset, p.Pos, want.posOffset, want.pos)
	}
	if len(want.pos) == 0 && len(p.Pos) != 0 {
		t.Errorf("%s: positive buckets %v, want none", what, p.Pos)
	}
	if len(want.neg) > 0 && (int(p.NegOffset) != want.negOff || !slices.Equal(p.Neg, want.neg)) {
		t.Errorf("%s: negative offset %d %v; want %d %v", what, p.NegOffset, p.Neg, want.negOff, want.neg)
	}
	if len(want.neg) == 0 && len(p.Neg) != 0 {
		t.Errorf("%s: negative buckets %v, want none", what, p.Neg)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// rankBucket returns the value range (lo, hi] of the bucket (or [0, 0] for
// the zero bucket) where 0-based rank r lands, walking the histogram in
// ascending order of value: negative buckets from the largest magnitude,
// then zeros, then positive buckets.
func rankBucket(p otlptest.Point, r uint64) (lo, hi float64, zero bool) {
	scale := int(p.Scale)
	var seen uint64
	for i := len(p.Neg) - 1; i >= 0; i-- {
		seen += p.Neg[i]
		if r < seen {
			idx := int(p.NegOffset) + i
			return -refBound(idx+1, scale), -refBound(idx, scale), false
		}
	}
	seen += p.Zero
	if r < seen {
		return 0, 0, true
	}
	for i, c := range p.Pos {
		seen += c
		if r < seen {
			idx := int(p.PosOffset) + i
			return refBound(idx, scale), refBound(idx+1, scale), false
		}
	}
	return math.NaN(), math.NaN(), false
}

// inBucket says whether v lies in the bucket (lo, hi] (negative buckets:
// [lo, hi)), with the bounds widened by the relative tolerance tol.
func inBucket(v, lo, hi float64, zero bool, tol float64) bool {
	if zero {
		return v == 0
	}
	if v > 0 {
		return v > lo*(1-tol) && v <= hi*(1+tol)
	}
	return v >= lo*(1+tol) && v < hi*(1-tol)
}

// nearestRank is the 0-based nearest-rank index of percentile p of n values.
func nearestRank(p, n int) int { return max((p*n+99)/100-1, 0) }

// toPoint converts an expHist into the receiver's flat form.
func toPoint(h *expHist) otlptest.Point {
	return otlptest.Point{Count: h.count, Sum: h.sum, Min: h.min, Max: h.max, HasSum: true, HasMin: true, HasMax: true,
		Scale: h.scale, Zero: h.zero, PosOffset: h.b[positive].offset, Pos: h.b[positive].counts, NegOffset: h.b[negative].offset, Neg: h.b[negative].counts}
}

var _ = outlet.ErrDropped
