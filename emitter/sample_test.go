package emitter

import (
	"math"
	"testing"
	"time"

	metrics "github.com/rcrowley/go-metrics"
)

func TestSampleReadMethods(t *testing.T) {
	s := NewSample()
	for _, v := range []int64{5, 1, 3, 2, 4} {
		s.Update(v)
	}
	checks := map[string]struct{ got, want float64 }{
		"Count":        {float64(s.Count()), 5},
		"Min":          {float64(s.Min()), 1},
		"Max":          {float64(s.Max()), 5},
		"Sum":          {float64(s.Sum()), 15},
		"Mean":         {s.Mean(), 3},
		"Variance":     {s.Variance(), 2},
		"StdDev":       {s.StdDev(), math.Sqrt(2)},
		"Percentile50": {s.Percentile(0.5), 3},
		"Percentile0":  {s.Percentile(0), 1},
		"Percentile1":  {s.Percentile(1), 5},
		"Size":         {float64(s.Size()), 5},
		"Snapshot":     {float64(s.Snapshot().Count()), 5},
		"Values":       {float64(len(s.Values())), 5},
	}
	for name, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", name, c.got, c.want)
		}
	}
	s.Clear()
	if s.Count() != 0 || s.Size() != 0 || s.Mean() != 0 || s.Variance() != 0 || s.Percentile(0.5) != 0 {
		t.Errorf("after Clear: count %d size %d", s.Count(), s.Size())
	}
	var _ metrics.Sample = s
}

func TestTimerMethods(t *testing.T) {
	tm := NewTimer()
	defer tm.Stop()
	tm.Update(2 * time.Millisecond)
	tm.Time(func() {})
	tm.UpdateSince(time.Now())
	if tm.Count() != 3 || tm.Max() != int64(2*time.Millisecond) || tm.Sum() < int64(2*time.Millisecond) {
		t.Errorf("count %d max %d sum %d", tm.Count(), tm.Max(), tm.Sum())
	}
	snap := tm.Snapshot()
	if snap.Count() != 3 || snap.Max() != int64(2*time.Millisecond) {
		t.Errorf("snapshot count %d max %d", snap.Count(), snap.Max())
	}
	if tm.RateMean() <= 0 {
		t.Errorf("RateMean = %v, want > 0", tm.RateMean())
	}
	if got := tm.Percentiles([]float64{1}); got[0] != float64(2*time.Millisecond) {
		t.Errorf("p100 = %v", got)
	}
	r := metrics.NewRegistry()
	if GetOrRegisterTimer("t", r) != GetOrRegisterTimer("t", r) {
		t.Error("GetOrRegisterTimer registered twice")
	}
	if GetOrRegisterHistogram("h", r) != GetOrRegisterHistogram("h", r) {
		t.Error("GetOrRegisterHistogram registered twice")
	}
}

func TestQuantile(t *testing.T) {
	tests := map[string]struct {
		v    []int64
		p    float64
		want float64
	}{
		"empty":        {nil, 0.5, 0},
		"one":          {[]int64{7}, 0.99, 7},
		"median even":  {[]int64{1, 2, 3, 4}, 0.5, 2.5},
		"median odd":   {[]int64{1, 2, 3}, 0.5, 2},
		"p95 of 1..21": {[]int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21}, 0.95, 20},
		"p99 of two":   {[]int64{0, 100}, 0.99, 99},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := quantile(tc.v, tc.p); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("quantile(%v, %v) = %v, want %v", tc.v, tc.p, got, tc.want)
			}
		})
	}
}

func TestSetMethods(t *testing.T) {
	s := NewSet()
	s.Update(42)
	s.Update(42)
	s.Add("42")
	s.Add("x")
	if s.Value() != 2 || s.Snapshot().Value() != 2 {
		t.Errorf("Value = %d, Snapshot = %d, want 2", s.Value(), s.Snapshot().Value())
	}
	if n, over := s.drain(); n != 2 || over != 0 || s.Value() != 0 {
		t.Errorf("drain = %d, %d; then Value = %d", n, over, s.Value())
	}
}
