package aggregate

import (
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/metric"
)

func TestTakeStates(t *testing.T) {
	now := time.Unix(1_700_000_000, 0).UTC()
	a, err := New(Config{Resolution: 10 * time.Second, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	start := now.Truncate(10 * time.Second)
	a.Add([]metric.Measurement{
		{Name: "req", Source: "web.1", Time: start, Kind: metric.Counter, Value: 2},
		{Name: "req", Source: "web.2", Time: start, Kind: metric.Counter, Value: 3},
		{Name: "lat", Source: "web.1", Time: start.Add(-10 * time.Second), Kind: metric.Measure, Value: 7},
	})
	got := a.TakeStates()
	if len(got) != 2 || !got[0].Start.Equal(start.Add(-10*time.Second)) || !got[1].Start.Equal(start) {
		t.Fatalf("TakeStates: %d buckets %v", len(got), got)
	}
	if n := len(got[1].States); n != 2 || got[1].States[0].Source != "web.1" || got[1].States[1].Count() != 1 {
		t.Fatalf("bucket %v: %d states", got[1].Start, n)
	}
	if st := a.Stats(); st.OpenSeries != 0 || st.BucketsFlushed != 0 || st.Late != 0 {
		t.Fatalf("stats after take: %+v", st)
	}
	// The same bucket accepts more: a fresh partial, not late.
	a.Add([]metric.Measurement{{Name: "req", Source: "web.1", Time: start, Kind: metric.Counter, Value: 5}})
	again := a.TakeStates()
	if len(again) != 1 || len(again[0].States) != 1 || again[0].States[0].Series().Sum != 5 {
		t.Fatalf("second take: %+v", again)
	}
	if err := got[1].States[0].Merge(again[0].States[0]); err != nil {
		t.Fatal(err)
	}
	if s := got[1].States[0].Series(); s.Sum != 7 || s.Count != 2 {
		t.Fatalf("merged partials: sum %v count %d, want 7, 2", s.Sum, s.Count)
	}
	if a.TakeStates() == nil || len(a.TakeStates()) != 0 {
		t.Fatal("empty aggregator: want an empty, non-nil slice")
	}
}
