package aggregate

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/metric"
)

// clock is a settable clock for Config.Now.
type clock struct{ sec atomic.Int64 }

func (c *clock) now() time.Time  { return at(float64(c.sec.Load())) }
func (c *clock) set(sec float64) { c.sec.Store(int64(sec)) }

// sums returns, per "name source" key, the counter sum of every flushed bucket
// by start second (relative to t0).
func sums(bs []*Bucket) map[int]map[string]float64 {
	out := map[int]map[string]float64{}
	for _, b := range bs {
		m := map[string]float64{}
		for _, s := range b.Series {
			m[s.Name+" "+s.Source] = s.Sum
		}
		out[int(b.Start.Sub(t0)/time.Second)] = m
	}
	return out
}

// burst returns n counters with distinct names from source src at second sec.
func burst(prefix, src string, n int, sec float64) []metric.Measurement {
	ms := make([]metric.Measurement, n)
	for i := range ms {
		ms[i] = cnt(prefix+strconv.Itoa(i), src, 1, sec)
	}
	return ms
}

// spread returns n counters with distinct names, each from its own source.
func spread(prefix string, n int, sec float64) []metric.Measurement {
	ms := make([]metric.Measurement, n)
	for i := range ms {
		ms[i] = cnt(prefix+strconv.Itoa(i), "web."+prefix+strconv.Itoa(i), 1, sec)
	}
	return ms
}

// lines returns n counter lines of name/src spread over the bucket at start.
func lines(name, src string, n int, start float64) []metric.Measurement {
	ms := make([]metric.Measurement, n)
	for i := range ms {
		ms[i] = cnt(name, src, 1, start+float64(i%60))
	}
	return ms
}

// TestBurstDoesNotStarveKnownSeries is issue 13's first reproduction at its
// size: after one burst of 150,000 distinct names (default MaxSeries,
// 100,000), an existing counter lost 26 of 98 lines in the next bucket. Now
// it loses none in the burst's bucket or the next one, a dyno that starts in
// the next bucket gets all its lines in, and every refused measurement is
// counted by reason.
func TestBurstDoesNotStarveKnownSeries(t *testing.T) {
	var c clock
	a := newTest(t, Config{Now: c.now})
	c.set(-30)
	a.Add(lines("app.requests", "web.1", 98, -60))
	if got := a.Flush(at(10)); len(got) != 1 {
		t.Fatalf("Flush of the first bucket = %s", dump(got))
	}

	// The burst, from the same dyno as the legitimate counter, then that
	// counter's lines of the bucket.
	c.set(30)
	a.Add(burst("burst.", "web.1", 150_000, 5))
	a.Add(lines("app.requests", "web.1", 98, 0))
	// The next bucket, while the burst's bucket is in its grace period: the
	// counter again, and a dyno that just started.
	c.set(65)
	a.Add(lines("app.requests", "web.1", 98, 60))
	a.Add(lines("app.requests", "web.2", 98, 60))
	a.Add(lines("app.errors", "web.1", 98, 60)) // a new metric of an old dyno

	got := sums(append(a.Flush(at(70)), a.Flush(at(130))...))
	for _, w := range []struct {
		bucket int
		key    string
	}{{0, "app.requests web.1"}, {60, "app.requests web.1"}, {60, "app.requests web.2"}, {60, "app.errors web.1"}} {
		if v := got[w.bucket][w.key]; v != 98 {
			t.Errorf("bucket %d: %s = %v, want 98", w.bucket, w.key, v)
		}
	}
	st := a.Stats()
	admitted := len(got[0]) - 1
	if dropped := st.DroppedSeriesLimit + st.DroppedSourceShare + st.DroppedOpenLimit; int(dropped) != 150_000-admitted {
		t.Errorf("dropped %d (%+v), want %d: every refused burst line counted", dropped, st, 150_000-admitted)
	}
	if st.DroppedSourceShare == 0 {
		t.Errorf("DroppedSourceShare = 0, want the burst's dyno held to its share: %+v", st)
	}
	if admitted == 0 || admitted > DefaultMaxSeries {
		t.Errorf("burst series admitted = %d, want some, at most %d", admitted, DefaultMaxSeries)
	}
	t.Logf("burst: %d of 150000 names admitted; %+v", admitted, st)
}

// TestSustainedNewNames is issue 13's second reproduction: under a sustained
// stream of new names (150,000 per bucket, from one dyno), 30–44 % of the
// legitimate metrics were lost. Now none are: the app's 400 series on four
// dynos, one of them the noisy one, come through whole in every bucket, and
// so does each dyno that starts in the middle of the attack.
func TestSustainedNewNames(t *testing.T) {
	if testing.Short() {
		t.Skip("adds 450,000 measurements")
	}
	var c clock
	a := newTest(t, Config{Now: c.now})
	legit := func(start float64, dynos int) []metric.Measurement {
		var ms []metric.Measurement
		for d := 1; d <= dynos; d++ {
			for m := range 100 {
				ms = append(ms, lines("app.m"+strconv.Itoa(m), "web."+strconv.Itoa(d), 3, start)...)
			}
		}
		return ms
	}
	// The app runs normally for a bucket, then the attack starts.
	c.set(-30)
	a.Add(legit(-60, 4))
	flushed := a.Flush(at(10))
	for b := range 3 {
		start := float64(60 * b)
		c.set(start + 30)
		// Interleave: the legitimate lines arrive after the new names of
		// their bucket began.
		a.Add(burst("attack."+strconv.Itoa(b)+".", "web.1", 75_000, start+1))
		a.Add(legit(start, 5+b)) // a new dyno each bucket
		a.Add(burst("attack."+strconv.Itoa(b)+".x", "web.1", 75_000, start+2))
		flushed = append(flushed, a.Flush(at(start+70-60))...) // the previous bucket
	}
	flushed = append(flushed, a.FlushAll()...)
	got := sums(flushed)
	for b := range 3 {
		for d := 1; d <= 5+b; d++ {
			for m := range 100 {
				key := "app.m" + strconv.Itoa(m) + " web." + strconv.Itoa(d)
				if v := got[60*b][key]; v != 3 {
					t.Fatalf("bucket %d: %s = %v, want 3 (no legitimate line lost); stats %+v", 60*b, key, v, a.Stats())
				}
			}
		}
	}
	st := a.Stats()
	if st.DroppedSourceShare+st.DroppedSeriesLimit == 0 {
		t.Errorf("no drops counted: %+v", st)
	}
	t.Logf("%+v", st)
}

// TestAdmissionRules checks each rule at a small MaxSeries.
func TestAdmissionRules(t *testing.T) {
	t.Run("room per bucket", func(t *testing.T) {
		a := newTest(t, Config{MaxSeries: 2})
		a.Add([]metric.Measurement{
			cnt("a", "web.1", 1, 0), cnt("b", "web.2", 1, 0),
			cnt("c", "web.3", 1, 0),  // third new series: dropped
			cnt("a", "web.1", 1, 1),  // existing series: fine
			cnt("a", "web.1", 1, 60), // the next bucket has its own room
		})
		s := a.Stats()
		if s.DroppedSeriesLimit != 1 || s.Added != 4 || s.OpenSeries != 3 {
			t.Fatalf("Stats = %+v, want DroppedSeriesLimit 1, Added 4, OpenSeries 3", s)
		}
	})
	t.Run("open limit", func(t *testing.T) {
		// Buckets ahead of the clock (within MaxFuture) each have room, but
		// all open buckets hold at most 2×MaxSeries.
		a := newTest(t, Config{MaxSeries: 4, MaxFuture: time.Hour})
		for b := range 4 {
			a.Add(spread("x", 4, float64(60*b)))
		}
		if s := a.Stats(); s.OpenSeries != 8 || s.DroppedOpenLimit != 8 {
			t.Fatalf("Stats = %+v, want OpenSeries 8, DroppedOpenLimit 8", s)
		}
	})
	t.Run("known series keep their place", func(t *testing.T) {
		var c clock
		a := newTest(t, Config{MaxSeries: 8, Now: c.now})
		c.set(0)
		known := spread("k", 6, 0)
		a.Add(known)
		a.Flush(at(70))
		// The next bucket: a quarter of the room (2) for new series, the
		// rest reserved for the six known ones, which arrive last.
		c.set(70)
		a.Add(spread("new", 5, 60))
		for i := range known {
			known[i].Time = at(61)
		}
		a.Add(known)
		got := a.FlushAll()
		if len(got) != 1 || len(got[0].Series) != 8 {
			t.Fatalf("FlushAll = %s, want the 6 known and 2 new series", dump(got))
		}
		if s := a.Stats(); s.DroppedSeriesLimit != 3 {
			t.Fatalf("Stats = %+v, want 3 new series refused", s)
		}
	})
	t.Run("source share", func(t *testing.T) {
		a := newTest(t, Config{MaxSeries: 16})
		// Room 16: the first 8 new series are free for all; past that, a
		// source that opened 2 (16/8) opens no more.
		a.Add(burst("noisy", "web.1", 12, 0))
		a.Add(burst("quiet", "web.2", 2, 0))
		a.Add(burst("other", "web.3", 3, 0))
		s := a.Stats()
		if s.DroppedSourceShare != 4+1 || s.OpenSeries != 8+2+2 {
			t.Fatalf("Stats = %+v, want DroppedSourceShare 5, OpenSeries 12", s)
		}
	})
}
