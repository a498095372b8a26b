package aggregate

import (
	"strconv"
	"strings"
	"testing"

	"github.com/dynometrics/dynometrics/internal/appstats"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// ofApp returns ms with every measurement's App set to app.
func ofApp(app string, ms []metric.Measurement) []metric.Measurement {
	for i := range ms {
		ms[i].App = app
	}
	return ms
}

// appSeries counts the series of each app in bs.
func appSeries(bs []*Bucket) map[string]int {
	out := map[string]int{}
	for _, b := range bs {
		for _, s := range b.Series {
			out[s.App]++
		}
	}
	return out
}

// TestAppShare: one app's burst of new names, each from a source of its
// own (which defeats the per-source share), leaves the other app its
// promised part of the room for new series, and its known series whole;
// every refusal is counted, overall and per app.
func TestAppShare(t *testing.T) {
	var c clock
	apps := appstats.New(nil)
	a := newTest(t, Config{MaxSeries: 1000, Now: c.now, Apps: apps})
	c.set(30)
	a.Add(ofApp("a", spread("a.known.", 10, 0)))
	a.Add(ofApp("b", spread("b.known.", 10, 0)))
	if got := a.Flush(at(70)); len(got) != 1 || len(got[0].Series) != 20 {
		t.Fatalf("first bucket: %s", dump(got))
	}

	// Room for new series 1000-20 = 980; two active apps are promised
	// 980/4 = 245 each. a takes its 245, then borrows while more than b's
	// unused 245 stays free: 735 in all.
	c.set(90)
	a.Add(ofApp("a", spread("burst.", 5000, 61)))
	a.Add(ofApp("b", spread("b.known.", 10, 62))) // b's known series, after the burst
	a.Add(ofApp("b", spread("b.new.", 300, 63)))  // b's new dyno: 245 promised, the rest beyond the room
	got := appSeries(a.Flush(at(130)))
	if got["a"] != 735 || got["b"] != 10+245 {
		t.Errorf("series per app %v, want a 735, b 255 (10 known + 245 new)", got)
	}
	st := a.Stats()
	if st.DroppedAppShare != 5000-735 || st.DroppedSeriesLimit != 300-245 || st.DroppedSourceShare != 0 {
		t.Errorf("stats %+v: want DroppedAppShare %d, DroppedSeriesLimit %d", st, 5000-735, 300-245)
	}
	ca, cb := apps.For("a"), apps.For("b")
	for _, w := range []struct {
		what      string
		got, want uint64
	}{
		{"a measurements", ca.Measurements.Load(), 10 + 5000},
		{"a app_share", ca.Dropped[appstats.AppShare].Load(), 5000 - 735},
		{"a series_limit", ca.Dropped[appstats.SeriesLimit].Load(), 0},
		{"b measurements", cb.Measurements.Load(), 10 + 10 + 300},
		{"b app_share", cb.Dropped[appstats.AppShare].Load(), 0},
		{"b series_limit", cb.Dropped[appstats.SeriesLimit].Load(), 300 - 245},
	} {
		if w.got != w.want {
			t.Errorf("%s = %d, want %d", w.what, w.got, w.want)
		}
	}
}

// TestAppShareManyApps: with 100 known apps one app's burst still leaves
// each of the 99 others its promised part (900/200 = 4 new series), and an
// app beyond its part borrows nothing once the room left is promised.
func TestAppShareManyApps(t *testing.T) {
	var c clock
	a := newTest(t, Config{MaxSeries: 1000, Now: c.now})
	c.set(30)
	for i := range 100 {
		a.Add(ofApp("app"+strconv.Itoa(i), spread("known.", 1, 0)))
	}
	a.Flush(at(70))
	c.set(90)
	// Room 900, promised 100×4; app0 borrows while more than the others'
	// 99×4 = 396 stays free: 504.
	a.Add(ofApp("app0", spread("burst.", 5000, 61)))
	for i := 1; i < 100; i++ {
		a.Add(ofApp("app"+strconv.Itoa(i), spread("new.", 5, 62))) // one more than promised
	}
	got := appSeries(a.Flush(at(130)))
	if got["app0"] != 504 {
		t.Errorf("app0 has %d series, want 504", got["app0"])
	}
	for i := 1; i < 100; i++ {
		if n := got["app"+strconv.Itoa(i)]; n != 4 {
			t.Fatalf("app%d has %d new series, want its 4", i, n)
		}
	}
	if st := a.Stats(); st.DroppedAppShare+st.DroppedSeriesLimit != 5000-504+99 {
		t.Errorf("stats %+v: want %d refused", st, 5000-504+99)
	}
}

// TestAppShareAlone: an app alone (no other app known or active) takes the
// whole room: promises bind only while other apps are active.
func TestAppShareAlone(t *testing.T) {
	a := newTest(t, Config{MaxSeries: 1000})
	a.Add(ofApp("a", spread("burst.", 2000, 1)))
	st := a.Stats()
	if st.OpenSeries != 1000 || st.DroppedSeriesLimit != 1000 || st.DroppedAppShare != 0 {
		t.Errorf("stats %+v: want 1000 open, 1000 refused for the room, none for the app share", st)
	}
}

// TestAppStatsOutcomes: every measurement of an app is counted in its
// Measurements and, when dropped, under its reason.
func TestAppStatsOutcomes(t *testing.T) {
	var c clock
	apps := appstats.New(nil)
	a := newTest(t, Config{Now: c.now, Apps: apps})
	c.set(30)
	bad := cnt("x", "web.1", 1, 0)
	bad.Kind = 0
	conflict := cnt("y", "web.1", 1, 1)
	conflict.Unit = "ms"
	a.Add(ofApp("shop", []metric.Measurement{
		cnt("y", "web.1", 1, 0), conflict, bad,
		cnt("z", "web.1", 1e200, 0), cnt("z", "web.1", 1, 3600*5), cnt("z", "web.1", 1, -3600*5),
	}))
	a.Add([]metric.Measurement{cnt("y", "web.1", 1, 0)}) // no app: not counted per app
	a.Flush(at(70))
	c.set(90)
	a.Add(ofApp("shop", []metric.Measurement{cnt("y", "web.1", 1, 5)})) // late
	s := apps.For("shop")
	want := map[appstats.Reason]uint64{appstats.Conflict: 1, appstats.Invalid: 1, appstats.OutOfRange: 1,
		appstats.Future: 1, appstats.Old: 1, appstats.Late: 1}
	for r := range appstats.NumReasons {
		if got := s.Dropped[r].Load(); got != want[r] {
			t.Errorf("shop dropped %s = %d, want %d", r, got, want[r])
		}
	}
	if got := s.Measurements.Load(); got != 7 {
		t.Errorf("shop measurements = %d, want 7", got)
	}
	if apps.Apps() != 1 {
		t.Errorf("%d apps counted, want 1 (shop)", apps.Apps())
	}
}

// TestAppShareSharedState: with shared state (TakeStates instead of
// Flush) no series is known, but the apps of the last buckets are: an app
// that bursts first in a bucket leaves the other its promised part.
func TestAppShareSharedState(t *testing.T) {
	var c clock
	a := newTest(t, Config{MaxSeries: 1000, Now: c.now})
	c.set(30)
	a.Add(ofApp("a", spread("a.", 10, 0)))
	a.Add(ofApp("b", spread("b.", 10, 0)))
	a.TakeStates()
	c.set(90) // bucket 0's deadline (70) passed: its series and apps become the known ones
	a.TakeStates()
	// Room 1000 - 20 known = 980, 2 apps promised 245 each: a takes 735.
	a.Add(ofApp("a", spread("burst.", 5000, 61)))
	a.Add(ofApp("b", spread("b.new.", 300, 62)))
	got := map[string]int{}
	for _, sb := range a.TakeStates() {
		for _, st := range sb.States {
			got[st.App]++
		}
	}
	if got["a"] != 735 || got["b"] != 245 {
		t.Errorf("series per app %v, want a 735, b 245", got)
	}
	if st := a.Stats(); st.DroppedAppShare != 5000-735 || st.DroppedSeriesLimit != 300-245 {
		t.Errorf("stats %+v: want DroppedAppShare %d, DroppedSeriesLimit %d", st, 5000-735, 300-245)
	}
}

// TestKnownSeriesKeepTheirPlaceWithSharedState: with shared state the
// aggregator never flushes (the store does), so the series it handed over
// for a bucket whose deadline passed are the known ones, and room is kept
// for them as after a flush: a burst of new names early in a bucket cannot
// take the place of the regular series that come later in it.
func TestKnownSeriesKeepTheirPlaceWithSharedState(t *testing.T) {
	var c clock
	a := newTest(t, Config{MaxSeries: 100, Now: c.now})
	c.set(30)
	a.Add(spread("regular.", 60, 0))
	a.TakeStates()
	a.Add(spread("regular.", 60, 20)) // opens again in the same bucket: counted once
	a.TakeStates()
	c.set(90) // bucket 0's deadline (70) passed: its 60 series are known
	a.TakeStates()
	a.Add(spread("burst.", 500, 61))  // room for new series: 100 - 60
	a.Add(spread("regular.", 60, 62)) // the regular series, later in the bucket
	regular, burst := 0, 0
	for _, sb := range a.TakeStates() {
		for _, st := range sb.States {
			if strings.HasPrefix(st.Name, "regular.") {
				regular++
			} else {
				burst++
			}
		}
	}
	if regular != 60 || burst != 40 {
		t.Errorf("bucket 60: %d regular series, %d of the burst; want 60 and 40", regular, burst)
	}
	if st := a.Stats(); st.DroppedSeriesLimit != 460 {
		t.Errorf("DroppedSeriesLimit %d, want 460", st.DroppedSeriesLimit)
	}
}
