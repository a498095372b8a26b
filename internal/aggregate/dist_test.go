package aggregate

import (
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/metric"
)

func dist(sec float64, count uint64, sum, lo, hi float64, bins ...metric.Bin) metric.Measurement {
	return metric.Measurement{Name: "http.duration", Source: "web", Kind: metric.Measure, Unit: "ms", Time: at(sec),
		Dist: &metric.Distribution{Count: count, Sum: sum, Min: lo, Max: hi, Bins: bins}}
}

// TestAddDistribution merges histogram points with single values of the same
// series and checks every statistic the outlets read.
func TestAddDistribution(t *testing.T) {
	a := newTest(t, Config{})
	a.Add([]metric.Measurement{
		dist(1, 4, 100, 5, 60, metric.Bin{Value: 5, Count: 1}, metric.Bin{Value: 15, Count: 2}, metric.Bin{Value: 60, Count: 1}),
		msr("http.duration", "web", 2, "ms", 2),
		dist(3, 2, 50, 20, 30, metric.Bin{Value: 20, Count: 1}, metric.Bin{Value: 30, Count: 1}),
	})
	bs := a.FlushAll()
	if len(bs) != 1 || len(bs[0].Series) != 1 {
		t.Fatalf("buckets %+v", bs)
	}
	s := bs[0].Series[0]
	// Values 2, 5, 15, 15, 20, 30, 60: nearest-rank median is the 4th (15).
	if s.Count != 7 || s.Sum != 152 || s.Min != 2 || s.Max != 60 || s.Median != 15 || s.P95 != 60 || s.P99 != 60 {
		t.Errorf("series %+v", s)
	}
	if want := 2.0*2 + 5*5 + 2*15*15 + 20*20 + 30*30 + 60*60; s.SumSquares != want {
		t.Errorf("sum of squares %v, want %v", s.SumSquares, want)
	}
	if s.Last != 25 { // the mean of the latest point
		t.Errorf("last %v, want 25", s.Last)
	}
	var n float64
	s.State.Values(func(_, c float64) bool { n += c; return true })
	if n != 7 {
		t.Errorf("State.Values counts add up to %v, want 7", n)
	}
}

// TestAddDistributionSketch sends more values than ExactLimit in one point, so
// the state moves to its sketch; percentiles stay within SketchAccuracy.
func TestAddDistributionSketch(t *testing.T) {
	a := newTest(t, Config{})
	a.Add([]metric.Measurement{dist(1, 3000, 3000*10+1000*90, 10, 100,
		metric.Bin{Value: 10, Count: 2000}, metric.Bin{Value: 100, Count: 1000})})
	s := a.FlushAll()[0].Series[0]
	if s.Count != 3000 || s.Min != 10 || s.Max != 100 {
		t.Fatalf("series %+v", s)
	}
	if s.Median < 10*(1-SketchAccuracy) || s.Median > 10*(1+SketchAccuracy) {
		t.Errorf("median %v, want 10 ± %v", s.Median, SketchAccuracy)
	}
	if s.P95 < 100*(1-SketchAccuracy) || s.P95 > 100 {
		t.Errorf("p95 %v, want 100 ± %v", s.P95, SketchAccuracy)
	}
}

// TestAddDistributionInvalid: a distribution on a non-Measure, empty or with
// non-finite statistics is counted as invalid and adds nothing.
func TestAddDistributionInvalid(t *testing.T) {
	a := newTest(t, Config{})
	bad := []metric.Measurement{dist(1, 0, 0, 0, 0), dist(1, 1, 1, 1, 1, metric.Bin{Value: 1, Count: 1})}
	bad[1].Kind = metric.Counter
	nan := dist(1, 1, 0, 0, 0, metric.Bin{Value: 0, Count: 1})
	nan.Dist.Sum = nan.Dist.Sum / nan.Dist.Min // 0/0
	bad = append(bad, nan)
	a.Add(bad)
	if st := a.Stats(); st.DroppedInvalid != 3 || st.Added != 0 {
		t.Errorf("stats %+v", st)
	}
	st := NewState("x", "", "", metric.Sample)
	if st.AddDistribution(time.Now(), &metric.Distribution{Count: 1, Bins: []metric.Bin{{Value: 1, Count: 1}}}) {
		t.Error("AddDistribution on a Sample state returned true")
	}
}
