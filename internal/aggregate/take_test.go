package aggregate

import (
	"strconv"
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

// TestTakeStatesAdmission: with shared state the same series open again in
// the same bucket after every hand-over; fair admission counts each series
// of a bucket once, however many hand-overs, so a bucket under MaxSeries
// loses nothing, a bucket over it still loses the series beyond it, and the
// admission state of buckets whose deadline passed is dropped.
func TestTakeStatesAdmission(t *testing.T) {
	now := time.Unix(1_700_000_000, 0).UTC()
	clock := now
	a, err := New(Config{Resolution: 10 * time.Second, Grace: time.Second, MaxSeries: 20,
		Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	start := now.Truncate(10 * time.Second)
	series := func(n int) []metric.Measurement {
		ms := make([]metric.Measurement, n)
		for i := range ms {
			ms[i] = metric.Measurement{Name: "m", Source: "web." + strconv.Itoa(i), Time: start, Kind: metric.Counter, Value: 1}
		}
		return ms
	}
	// 15 series of one bucket, handed over 10 times: 150 openings of 15 series.
	for range 10 {
		a.Add(series(15))
		a.TakeStates()
	}
	if st := a.Stats(); st.Added != 150 || st.DroppedSeriesLimit+st.DroppedSourceShare+st.DroppedOpenLimit != 0 {
		t.Fatalf("15 series handed over 10 times: added %d, dropped %d/%d/%d; want 150 and none",
			st.Added, st.DroppedSeriesLimit, st.DroppedSourceShare, st.DroppedOpenLimit)
	}
	// The bound still holds per bucket: 25 series of that bucket, 5 beyond it.
	a.Add(series(25))
	if st := a.Stats(); st.Added != 170 || st.DroppedSeriesLimit+st.DroppedSourceShare == 0 {
		t.Fatalf("25 series in a bucket of MaxSeries 20: added %d (want 170), dropped %d/%d",
			st.Added, st.DroppedSeriesLimit, st.DroppedSourceShare)
	}
	a.TakeStates()
	a.adm.mu.Lock()
	n := len(a.adm.buckets)
	a.adm.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d buckets in admission, want the open one", n)
	}
	// Past the bucket's deadline a hand-over forgets its admission state.
	clock = start.Add(12 * time.Second)
	a.TakeStates()
	a.adm.mu.Lock()
	n = len(a.adm.buckets)
	a.adm.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d buckets in admission after the deadline, want 0", n)
	}
}

// TestTakeStatesAdvancesLateMark: with shared state a bucket is closed at
// its deadline by whichever worker flushes it, so a measurement arriving
// after that for it is late here too (counted, never taken), whether or not
// this worker had anything in that bucket; measurements for open buckets
// are taken as before.
func TestTakeStatesAdvancesLateMark(t *testing.T) {
	const res, grace = 10 * time.Second, 2 * time.Second
	now := time.Unix(1_700_000_005, 0).UTC()
	a, err := New(Config{Resolution: res, Grace: grace, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	cur := now.Truncate(res)
	for name, tc := range map[string]struct {
		at   time.Time
		late bool
	}{
		"the bucket before, deadline passed": {cur.Add(-res), true},
		"two buckets before":                 {cur.Add(-2 * res), true},
		"the current bucket":                 {cur, false},
	} {
		t.Run(name, func(t *testing.T) {
			a.TakeStates()
			before := a.Stats().Late
			a.Add([]metric.Measurement{{Name: "req", Source: "run.9", Time: tc.at, Kind: metric.Counter, Value: 1}})
			got := a.TakeStates()
			late := a.Stats().Late - before
			if tc.late && (late != 1 || len(got) != 0) {
				t.Errorf("late %d, taken %d buckets; want counted late, nothing taken", late, len(got))
			}
			if !tc.late && (late != 0 || len(got) != 1 || !got[0].Start.Equal(tc.at)) {
				t.Errorf("late %d, taken %v; want the bucket at %v taken", late, got, tc.at)
			}
		})
	}
}
