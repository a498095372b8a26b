package aggregate

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/metric"
)

// exactSeries computes the expected Measure statistics of vs (added in
// order, one nanosecond apart) the slow, obvious way.
func exactSeries(vs []float64) Series {
	s := Series{Kind: metric.Measure, Count: int64(len(vs)), Min: math.Inf(1), Max: math.Inf(-1)}
	for _, v := range vs {
		s.Sum += v
		s.SumSquares += v * v
		s.Min = math.Min(s.Min, v)
		s.Max = math.Max(s.Max, v)
	}
	s.Last = vs[len(vs)-1]
	sorted := slices.Clone(vs)
	slices.Sort(sorted)
	rank := func(p float64) float64 {
		// Nearest rank: the smallest value with at least p% of the values at
		// or below it.
		k := int(math.Ceil(p / 100 * float64(len(sorted))))
		return sorted[max(k, 1)-1]
	}
	s.Median, s.P95, s.P99 = rank(50), rank(95), rank(99)
	return s
}

func stateOf(vs []float64) *State {
	st := NewState("x", "", "", metric.Measure)
	for i, v := range vs {
		st.Add(t0.Add(time.Duration(i)), v)
	}
	return st
}

// distributions of test data; every value is an integer or a multiple of
// 1/1024 so that sums are exact in any order.
var distributions = map[string]func(r *rand.Rand) float64{
	"uniform 0-1000":   func(r *rand.Rand) float64 { return float64(r.IntN(1000_000)) / 1024 },
	"lognormal skewed": func(r *rand.Rand) float64 { return math.Round(math.Exp(r.NormFloat64()*2+3)*1024) / 1024 },
	"heavy tail": func(r *rand.Rand) float64 {
		if r.IntN(100) == 0 {
			return float64(30000 + r.IntN(1000)) // router timeouts
		}
		return float64(1 + r.IntN(50))
	},
	"mostly zeros":      func(r *rand.Rand) float64 { return float64(max(0, r.IntN(10)-6)) },
	"negative and zero": func(r *rand.Rand) float64 { return float64(r.IntN(2001) - 1000) },
	"all negative":      func(r *rand.Rand) float64 { return -math.Round(math.Exp(r.NormFloat64()*3)*1024) / 1024 },
	"wide range 1e-6 to 1e9": func(r *rand.Rand) float64 {
		return math.Ldexp(float64(1+r.IntN(1024)), r.IntN(50)-30)
	},
	"constant": func(r *rand.Rand) float64 { return 42 },
}

func TestPercentilesExact(t *testing.T) {
	for name, gen := range distributions {
		for _, n := range []int{1, 2, 3, 10, 99, 100, 101, 999, ExactLimit} {
			r := rand.New(rand.NewPCG(uint64(n), 7))
			vs := make([]float64, n)
			for i := range vs {
				vs[i] = gen(r)
			}
			got := stateOf(vs).Series()
			want := exactSeries(vs)
			want.Name = "x"
			if got != want {
				t.Errorf("%s, n=%d:\n got %s\nwant %s", name, n, fmtSeries(got), fmtSeries(want))
			}
		}
	}
}

func TestPercentilesSketch(t *testing.T) {
	within := func(got, want float64) bool {
		if want == 0 {
			return got == 0
		}
		return math.Abs(got-want) <= 0.01*math.Abs(want)
	}
	for name, gen := range distributions {
		for _, n := range []int{ExactLimit + 1, 1500, 10_000, 200_000} {
			r := rand.New(rand.NewPCG(uint64(n), 11))
			vs := make([]float64, n)
			for i := range vs {
				vs[i] = gen(r)
			}
			st := stateOf(vs)
			if !st.inSketch() {
				t.Fatalf("%s, n=%d: values not in the sketch", name, n)
			}
			got, want := st.Series(), exactSeries(vs)
			if got.Count != want.Count || got.Sum != want.Sum || got.Min != want.Min || got.Max != want.Max || got.Last != want.Last {
				t.Errorf("%s, n=%d: summary differs:\n got %s\nwant %s", name, n, fmtSeries(got), fmtSeries(want))
			}
			for _, p := range []struct {
				name      string
				got, want float64
			}{{"median", got.Median, want.Median}, {"p95", got.P95, want.P95}, {"p99", got.P99, want.P99}} {
				if !within(p.got, p.want) {
					t.Errorf("%s, n=%d: %s = %g, exact %g (error %.3g%%)", name, n, p.name, p.got, p.want, 100*math.Abs(p.got-p.want)/math.Abs(p.want))
				}
			}
		}
	}
}

// TestPercentileRankNotQuantile pins the case where DDSketch's own
// q*(n-1) rank would pick a neighbour of the nearest-rank value: 1001 values,
// 990 of them 1 and 11 of them 1000. Nearest rank for p99 is ceil(990.99) =
// 991, the first 1000; q*(n-1) = 990 (0-based) would pick the last 1.
func TestPercentileRankNotQuantile(t *testing.T) {
	vs := make([]float64, 0, 1001)
	for range 990 {
		vs = append(vs, 1)
	}
	for range 11 {
		vs = append(vs, 1000)
	}
	got := stateOf(vs).Series()
	if want := exactSeries(vs).P99; want != 1000 || math.Abs(got.P99-want) > 10 {
		t.Fatalf("P99 = %g, exact %g", got.P99, want)
	}
}

func TestStateIgnoresNonFinite(t *testing.T) {
	st := NewState("x", "", "", metric.Measure)
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if st.Add(t0, v) {
			t.Errorf("Add(%g) = true", v)
		}
	}
	if !st.Add(t0, math.MaxFloat64) || !st.Add(t0, -math.MaxFloat64) {
		t.Fatal("Add(±MaxFloat64) = false")
	}
	if st.Count() != 2 {
		t.Fatalf("Count = %d, want 2", st.Count())
	}
	// Extreme values survive the sketch (clamped to its range).
	for i := range 2000 {
		st.Add(t0, float64(i))
	}
	st.Add(t0, math.MaxFloat64)
	got := st.Series()
	// The sketch spans far more than SketchMaxBins bins: it is saturated and
	// its low bins collapsed, so only the bounds are meaningful.
	if got.Max != math.MaxFloat64 || got.Min != -math.MaxFloat64 || got.Count != 2003 || !st.saturated() {
		t.Fatalf("Series = %s, saturated %v", fmtSeries(got), st.saturated())
	}
}

// split aggregates vs[:k] and vs[k:] into two states, merges the second into
// the first and returns the result.
func split(t *testing.T, vs []float64, k int) *State {
	t.Helper()
	a := NewState("x", "", "", metric.Measure)
	b := NewState("x", "", "", metric.Measure)
	for i, v := range vs {
		st := a
		if i >= k {
			st = b
		}
		st.Add(t0.Add(time.Duration(i)), v)
	}
	if err := a.Merge(b); err != nil {
		t.Fatalf("Merge: %v", err)
	}
	return a
}

// near compares floating-point sums, which depend on the order of addition:
// a merge adds the halves' sums rather than every value in turn.
func near(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-12*math.Max(math.Abs(a), math.Abs(b))
}

// sameSeries is Series equality with sums compared by near; everything else,
// percentiles included, must be exactly equal.
func sameSeries(a, b Series) bool {
	if !near(a.Sum, b.Sum) || !near(a.SumSquares, b.SumSquares) {
		return false
	}
	a.Sum, a.SumSquares = b.Sum, b.SumSquares
	return a == b
}

func TestMergeExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for name, gen := range distributions {
		for _, tc := range []struct{ n, k int }{{1, 0}, {1, 1}, {2, 1}, {10, 3}, {1000, 500}, {1000, 1}, {1000, 999}, {1000, 0}} {
			vs := make([]float64, tc.n)
			for i := range vs {
				vs[i] = gen(r)
			}
			got := split(t, vs, tc.k).Series()
			want := exactSeries(vs)
			want.Name = "x"
			if !sameSeries(got, want) {
				t.Errorf("%s, %d+%d:\n got %s\nwant %s", name, tc.k, tc.n-tc.k, fmtSeries(got), fmtSeries(want))
			}
		}
	}
}

func TestMergeSketch(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for name, gen := range distributions {
		// raw+raw overflowing, raw+sketch, sketch+raw, sketch+sketch.
		for _, tc := range []struct{ n, k int }{{1200, 600}, {5000, 10}, {5000, 4990}, {50_000, 25_000}} {
			vs := make([]float64, tc.n)
			for i := range vs {
				vs[i] = gen(r)
			}
			merged := split(t, vs, tc.k).Series()
			all := stateOf(vs).Series()
			want := exactSeries(vs)
			if merged.Count != want.Count || !near(merged.Sum, want.Sum) || merged.Min != want.Min || merged.Max != want.Max ||
				!near(merged.SumSquares, want.SumSquares) || merged.Last != want.Last {
				t.Errorf("%s, %d+%d: summary:\n got %s\nwant %s", name, tc.k, tc.n-tc.k, fmtSeries(merged), fmtSeries(want))
			}
			// Within 1% of exact, and the same as aggregating all in one state
			// (a sketch's bins do not depend on insertion order).
			for _, p := range [][3]float64{{merged.Median, want.Median, all.Median}, {merged.P95, want.P95, all.P95}, {merged.P99, want.P99, all.P99}} {
				if math.Abs(p[0]-p[1]) > 0.01*math.Abs(p[1]) || p[0] != p[2] {
					t.Errorf("%s, %d+%d: percentile %g, exact %g, unmerged %g", name, tc.k, tc.n-tc.k, p[0], p[1], p[2])
				}
			}
		}
	}
}

func TestMergeKinds(t *testing.T) {
	c1, c2 := NewState("req", "web.1", "", metric.Counter), NewState("req", "web.1", "", metric.Counter)
	c1.Add(at(1), 2)
	c2.Add(at(0), 3)
	c2.Add(at(2), 4)
	if err := c1.Merge(c2); err != nil {
		t.Fatal(err)
	}
	if got, want := c1.Series(), (Series{Name: "req", Source: "web.1", Kind: metric.Counter, Count: 3, Sum: 9}); got != want {
		t.Errorf("counter merge = %s", fmtSeries(got))
	}
	s1, s2 := NewState("mem", "web.1", "MB", metric.Sample), NewState("mem", "web.1", "MB", metric.Sample)
	s1.Add(at(5), 1)
	s2.Add(at(5), 2) // same time: the merged-in state, arriving later, wins
	s2.Add(at(3), 3)
	if err := s1.Merge(s2); err != nil {
		t.Fatal(err)
	}
	if got, want := s1.Series(), (Series{Name: "mem", Source: "web.1", Unit: "MB", Kind: metric.Sample, Count: 3, Last: 2}); got != want {
		t.Errorf("sample merge = %s", fmtSeries(got))
	}
	empty := NewState("mem", "web.1", "MB", metric.Sample)
	if err := empty.Merge(s1); err != nil || empty.Series() != s1.Series() {
		t.Errorf("merge into empty = %s, %v", fmtSeries(empty.Series()), err)
	}
	for name, o := range map[string]*State{
		"name":   NewState("mem2", "web.1", "MB", metric.Sample),
		"source": NewState("mem", "web.2", "MB", metric.Sample),
		"unit":   NewState("mem", "web.1", "kB", metric.Sample),
		"kind":   NewState("mem", "web.1", "MB", metric.Measure),
	} {
		if err := s1.Merge(o); !errors.Is(err, ErrMismatch) {
			t.Errorf("merge with other %s: %v, want ErrMismatch", name, err)
		}
	}
}

// TestTakeStatesMerge checks the cross-process path: two aggregators each
// see half of the lines; merging the states they hand over gives what one
// aggregator seeing everything flushes.
func TestTakeStatesMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var ms []metric.Measurement
	for i := range 3000 {
		sec := float64(i%120) + 0.5
		ms = append(ms,
			msr("lat", "web."+string(rune('1'+i%3)), float64(r.IntN(5000)), "ms", sec),
			cnt("req", "web.1", 1, sec),
			smp("mem", "web.2", float64(i), "MB", float64(i)/100))
	}
	one, p1, p2 := newTest(t, Config{}), newTest(t, Config{}), newTest(t, Config{})
	one.Add(ms)
	p1.Add(ms[:len(ms)/2])
	p2.Add(ms[len(ms)/2:])
	want := one.Flush(at(3600))
	s1, s2 := p1.TakeStates(), p2.TakeStates()
	if len(s1) != 2 || len(s2) != 2 {
		t.Fatalf("TakeStates returned %d and %d buckets, want 2 each", len(s1), len(s2))
	}
	var got []*Bucket
	for i := range s1 {
		if len(s1[i].States) != len(s2[i].States) || !s1[i].Start.Equal(s2[i].Start) {
			t.Fatalf("bucket %d: different shapes", i)
		}
		for j, st := range s1[i].States {
			if err := st.Merge(s2[i].States[j]); err != nil {
				t.Fatal(err)
			}
		}
		got = append(got, s1[i].Bucket())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged:\n got %s\nwant %s", dump(got), dump(want))
	}
	// Taken, not flushed: the series are no longer open and not counted as
	// flushed (the worker that closes the bucket counts them).
	if st := p1.Stats(); st.OpenSeries != 0 || st.SeriesFlushed != 0 || st.BucketsFlushed != 0 {
		t.Errorf("Stats after TakeStates = %+v", st)
	}
}

func TestEncodingRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	for name, st := range map[string]*State{
		"empty counter": NewState("req", "web.1", "", metric.Counter),
		"counter": func() *State {
			s := NewState("req", "web.1", "", metric.Counter)
			s.Add(at(1), 3)
			s.Add(at(2), 4)
			return s
		}(),
		"sample":      func() *State { s := NewState("mem", "", "MB", metric.Sample); s.Add(at(1), 3); return s }(),
		"measure raw": stateOf([]float64{3, -1, 0, 7.25}),
		"counter of an app": func() *State {
			s := NewState("req", "web.1", "", metric.Counter)
			s.App = "billing"
			s.Add(at(1), 5)
			return s
		}(),
		"measure sketch of an app": func() *State {
			s := NewState("lat", "web.2", "ms", metric.Measure)
			s.App = "shop-eu-2"
			for i := range ExactLimit + 20 {
				s.Add(at(float64(i)), distributions["heavy tail"](r))
			}
			return s
		}(),
		"measure sketch": func() *State {
			vs := make([]float64, 5000)
			for i := range vs {
				vs[i] = distributions["negative and zero"](r)
			}
			return stateOf(vs)
		}(),
	} {
		b, err := st.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got State
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("%s: UnmarshalBinary: %v", name, err)
		}
		if got.Series() != st.Series() || got.lastTime != st.lastTime || got.Kind != st.Kind || got.App != st.App {
			t.Errorf("%s: round trip\n got %s app %q\nwant %s app %q", name, fmtSeries(got.Series()), got.App, fmtSeries(st.Series()), st.App)
		}
		// A state without an app keeps the form of version 1 (what earlier
		// releases read); one with an app is version 2.
		if want := map[bool]byte{false: stateVersion, true: stateVersionApp}[st.App != ""]; b[0] != want {
			t.Errorf("%s: version %d, want %d", name, b[0], want)
		}
		// The decoded state keeps merging correctly.
		if err := got.Merge(st); err != nil || got.Count() != 2*st.Count() {
			t.Errorf("%s: merge after decode: count %d, %v", name, got.Count(), err)
		}
	}
}

func TestEncodingErrors(t *testing.T) {
	valid, _ := stateOf([]float64{1, 2}).MarshalBinary()
	counter := NewState("req", "", "", metric.Counter)
	counter.Add(t0, 1)
	validCounter, _ := counter.MarshalBinary()
	ones := make([]float64, 1001)
	for i := range ones {
		ones[i] = 1
	}
	sk, _ := stateOf(ones).MarshalBinary()
	// The sketch part of sk: mode, accuracy, zero count, 0 negative bins,
	// 1 positive bin: index 0 (the value 1), count 1001.
	tail := []byte{modeSketch, 0x7b, 0x14, 0xae, 0x47, 0xe1, 0x7a, 0x74, 0x3f, 0, 0, 1, 0, 0xe9, 0x07}
	prefix := sk[:len(sk)-len(tail)]
	if !slices.Equal(sk[len(prefix):], tail) {
		t.Fatalf("sketch encoding changed: % x", sk[len(prefix):])
	}
	withTail := func(t ...byte) []byte { return append(slices.Clone(prefix), t...) }
	tests := map[string]struct {
		in   []byte
		want string
	}{
		"sketch: bin index out of range": {withTail(append(slices.Clone(tail[:11]), 2, 0xfe, 0xff, 0xff, 0xff, 0x0f, 1, 0, 0xe8, 0x07)...), "bin index 2147483647 outside [-70839, 70942]"},
		"sketch: counts do not add up":   {withTail(append(slices.Clone(tail[:13]), 0xe8, 0x07)...), "sketch holds 1000 values for count 1001"},
		"sketch: bin count too large":    {withTail(append(slices.Clone(tail[:13]), 0xea, 0x07)...), "bin count 1002 outside [1, 1001]"},
		"sketch: zero count too large":   {withTail(append(slices.Clone(tail[:9]), 0xea, 0x07, 0, 0)...), "zero count 1002 exceeds count 1001"},
		"sketch: other accuracy":         {withTail(modeSketch, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f), "sketch accuracy 1, want 0.005"},
		"sketch: too many bins":          {withTail(append(slices.Clone(tail[:10]), 0x81, 0x40)...), "8193 bins exceed 4096"},
		"empty":                          {nil, "offset 0: version: unexpected end"},
		"bad version":                    {[]byte{9}, "offset 1: version 9, want 1"},
		"bad kind":                       {[]byte{1, 7}, "offset 2: unknown kind 7"},
		"short name":                     {[]byte{1, 3, 5, 'a'}, "offset 3: name: length 5 exceeds remaining 1 bytes"},
		"huge name":                      {[]byte{1, 3, 0xff, 0xff, 0x01}, "offset 5: name: length 32767 exceeds 4096"},
		"truncated":                      {valid[:len(valid)-3], "value: length 8 exceeds remaining 5 bytes"},
		"trailing bytes":                 {append(slices.Clone(valid), 0), "1 trailing bytes"},
		"count mismatch":                 {func() []byte { b := slices.Clone(valid); b[6] = 3; return b }(), "2 raw values for count 3"},
		"values for a counter": {func() []byte {
			b := slices.Clone(validCounter)
			b[len(b)-1] = 1
			return append(b, make([]byte, 8)...)
		}(), "1 raw values for a count series"},
		"bad mode":               {func() []byte { b := slices.Clone(validCounter); b[len(b)-2] = 7; return b }(), "unknown mode 7"},
		"v2: empty app":          {append([]byte{2, 0}, validCounter[1:]...), "offset 2: empty app in a version 2 state"},
		"v2: short app":          {[]byte{2, 4, 'a', 'b'}, "offset 2: app: length 4 exceeds remaining 2 bytes"},
		"v2: huge app":           {[]byte{2, 0x81, 0x40}, "offset 3: app: length 8193 exceeds 4096"},
		"v2: no app length":      {[]byte{2}, "offset 1: app length: bad varint"},
		"v2: bad kind after app": {[]byte{2, 1, 'a', 9}, "offset 4: unknown kind 9"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var st State
			err := st.UnmarshalBinary(tc.in)
			if !errors.Is(err, ErrEncoding) || !contains(err.Error(), tc.want) {
				t.Fatalf("UnmarshalBinary error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func FuzzUnmarshalState(f *testing.F) {
	withApp := func(st *State) *State { st.App = "billing"; return st }
	for _, st := range []*State{stateOf([]float64{1, 2, 3}), stateOf(make([]float64, 1500)), NewState("a", "b", "c", metric.Sample),
		withApp(stateOf([]float64{4, 5})), withApp(stateOf(make([]float64, 1200))), withApp(NewState("a", "b", "c", metric.Counter))} {
		b, _ := st.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var st State
		if err := st.UnmarshalBinary(data); err != nil {
			return
		}
		// Whatever decodes must be usable and re-encode to the same bytes.
		_ = st.Series()
		b, err := st.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var again State
		if err := again.UnmarshalBinary(b); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if again.App != st.App || again.Name != st.Name || again.Source != st.Source || again.Unit != st.Unit || again.Kind != st.Kind {
			t.Fatalf("re-decode changed the series: %q %q %q %q %v, was %q %q %q %q %v",
				again.App, again.Name, again.Source, again.Unit, again.Kind, st.App, st.Name, st.Source, st.Unit, st.Kind)
		}
	})
}

func TestValuesExactAndSketch(t *testing.T) {
	for _, n := range []int{7, ExactLimit + 500} {
		st := &State{Name: "x", Kind: metric.Measure}
		var want float64
		for i := range n {
			v := float64((i*37)%n) - float64(n)/3 // negatives, a zero, positives
			st.add(int64(i), v)
			want += 1
		}
		var total float64
		prev := math.Inf(-1)
		st.Values(func(v, c float64) bool {
			if v < prev {
				t.Fatalf("n=%d: values not ascending: %v after %v", n, v, prev)
			}
			prev = v
			total += c
			return true
		})
		if total != want {
			t.Errorf("n=%d: counts add up to %v, want %v", n, total, want)
		}
		var calls int
		st.Values(func(float64, float64) bool { calls++; return false })
		if calls != 1 {
			t.Errorf("n=%d: Values went on after f returned false: %d calls", n, calls)
		}
	}
}
