package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
)

// appSeries is one series of an app in the tests below.
type appSeries struct{ app, name, source string }

// takeApps builds the states one worker saw: each measurement carries its
// app (multi-app mode), or none.
func takeApps(t *testing.T, start time.Time, ms []metric.Measurement) []*aggregate.StateBucket {
	t.Helper()
	a, err := aggregate.New(aggregate.Config{Resolution: res, Now: func() time.Time { return start }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range ms {
		ms[i].Time = start.Add(time.Duration(i) * time.Millisecond)
	}
	a.Add(ms)
	return a.TakeStates()
}

// appLoad is what worker w (0, 1) of the test saw of the i-th app in bucket
// n: req counts and lat values of src, the same names and source for every
// app.
func appLoad(app string, i int, src string, w, n int) []metric.Measurement {
	f := float64(1 + 3*i + 10*w + 100*n)
	var ms []metric.Measurement
	for k := range 3 {
		ms = append(ms,
			metric.Measurement{App: app, Name: "req", Source: src, Kind: metric.Counter, Value: f + float64(k)},
			metric.Measurement{App: app, Name: "lat", Source: src, Kind: metric.Measure, Unit: "ms", Value: f * float64(k+1)})
	}
	return ms
}

// TestAppsKeptApart: two workers hand over the same (name, source) for two
// apps and for no app (single-app mode); Redis merges each app's series on
// its own, the flushed bucket and the feed carry each (app, name, source)
// once with the exact merged values, and the running totals are per app.
func TestAppsKeptApart(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now().Truncate(res).Add(-time.Hour)
	c := &clock{t: start.Add(time.Second)}
	r := &recorder{}
	a := open(t, srv, "a", c, r, "librato")
	b := open(t, srv, "b", c, r, "librato")
	views := make(chan *aggregate.Bucket, 10)
	go b.Feed(ctx, func(bk *aggregate.Bucket) { views <- bk })
	time.Sleep(200 * time.Millisecond) // Feed starts reading at "$"

	apps := []string{""}
	apps = append(apps, sharedApp(t, "shop", apps, "req", "lat"))
	apps = append(apps, sharedApp(t, "billing", apps, "req", "lat"))
	const src = "web.1"
	// The reference: per (app, name, source, bucket) every value posted.
	type key struct {
		appSeries
		bucket int
	}
	ref := map[key][]float64{}
	for n := range 2 {
		bstart := start.Add(time.Duration(n) * res)
		for w, s := range []*Store{a, b} {
			var ms []metric.Measurement
			for i, app := range apps {
				ms = append(ms, appLoad(app, i, src, w, n)...)
			}
			for _, m := range ms {
				k := key{appSeries{m.App, m.Name, m.Source}, n}
				ref[k] = append(ref[k], m.Value)
			}
			if err := s.Handover(ctx, takeApps(t, bstart, ms)); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.set(start.Add(2*res + 2*time.Second))
	for range 3 {
		a.Tick(ctx)
		b.Tick(ctx)
	}

	got := map[key]aggregate.Series{}
	for _, bk := range r.buckets("librato") {
		n := int(bk.Start.Sub(start) / res)
		for _, s := range bk.Series {
			k := key{appSeries{s.App, s.Name, s.Source}, n}
			if _, dup := got[k]; dup {
				t.Errorf("%+v delivered twice", k)
			}
			got[k] = s
		}
	}
	if len(got) != len(ref) {
		t.Errorf("delivered %d (app, name, source, bucket)s, want %d", len(got), len(ref))
	}
	running := map[appSeries][2]float64{} // sum, count over the buckets so far
	for n := range 2 {
		for _, app := range apps {
			for _, name := range []string{"req", "lat"} {
				k := key{appSeries{app, name, src}, n}
				vals, s := ref[k], got[k]
				sum := 0.0
				for _, v := range vals {
					sum += v
				}
				tot := running[k.appSeries]
				tot = [2]float64{tot[0] + sum, tot[1] + float64(len(vals))}
				running[k.appSeries] = tot
				if s.Count != int64(len(vals)) || s.Sum != sum {
					t.Errorf("%+v: count %d sum %v, want %d %v", k, s.Count, s.Sum, len(vals), sum)
				}
				if name == "lat" && (s.Median != nearest(vals, 50) || s.Min != slices.Min(vals) || s.Max != slices.Max(vals)) {
					t.Errorf("%+v: median %v min %v max %v, want %v %v %v", k, s.Median, s.Min, s.Max,
						nearest(vals, 50), slices.Min(vals), slices.Max(vals))
				}
				if s.Totals == nil || s.Totals.Sum != tot[0] || s.Totals.Count != tot[1] || !s.Totals.Start.Equal(start) {
					t.Errorf("%+v: totals %+v, want sum %v count %v since %v", k, s.Totals, tot[0], tot[1], start)
				}
			}
		}
	}

	// The feed: every worker's viewers see each app's series, exact.
	viewed := map[key]float64{}
	deadline := time.After(10 * time.Second)
	for len(viewed) < len(ref) {
		select {
		case bk := <-views:
			n := int(bk.Start.Sub(start) / res)
			for _, s := range bk.Series {
				viewed[key{appSeries{s.App, s.Name, s.Source}, n}] = s.Sum
			}
		case <-deadline:
			t.Fatalf("the feed showed %d of %d series: %v", len(viewed), len(ref), viewed)
		}
	}
	for k, s := range got {
		if viewed[k] != s.Sum {
			t.Errorf("%+v: viewed sum %v, delivered %v", k, viewed[k], s.Sum)
		}
	}
}

// sharedApp returns base, or base-N, whose series share their partition
// (of 4) with the same name and source of every app given, for each name:
// so that a merge which confused the apps would show. (The low bits of
// FNV-1a depend only on the low bits of each byte, so an app either shares
// every partition with another or none.)
func sharedApp(t *testing.T, base string, with []string, names ...string) string {
	t.Helper()
	for i := range 1000 {
		app := base
		if i > 0 {
			app = fmt.Sprintf("%s-%d", base, i)
		}
		ok := true
		for _, name := range names {
			for _, o := range with {
				ok = ok && partition(app, name, "web.1", 4) == partition(o, name, "web.1", 4)
			}
		}
		if ok {
			return app
		}
	}
	t.Fatalf("no app like %s shares a partition with %q", base, with)
	return ""
}

func nearest(vals []float64, p int) float64 {
	v := slices.Sorted(slices.Values(vals))
	return v[max((p*len(v)+99)/100-1, 0)]
}

// TestAppsRollingUpgrade: what a worker of the previous release wrote
// (series without an app) goes on: its running totals field continues in the
// upgraded worker's single-app series and is not taken by an app's series of
// the same name and source, and a series without an app keeps the partition
// it had (FNV-1a of name NUL source).
func TestAppsRollingUpgrade(t *testing.T) {
	for _, src := range []string{"web.1", "run.1234", "", "web.10"} {
		h := fnv.New64a()
		h.Write([]byte("req\x00" + src))
		if got, want := partition("", "req", src, 16), int(h.Sum64()%16); got != want {
			t.Errorf("partition of req/%s without an app: %d, was %d", src, got, want)
		}
		h = fnv.New64a()
		h.Write([]byte("billing\x00req\x00" + src))
		if got, want := partition("billing", "req", src, 1000), int(h.Sum64()%1000); got != want {
			t.Errorf("partition of billing's req/%s: %d, want FNV-1a of app NUL name NUL source: %d", src, got, want)
		}
	}
	srv := redistest.Start(t)
	ctx := context.Background()
	start := time.Now().Truncate(res).Add(-time.Hour)
	c := &clock{t: start.Add(time.Second)}
	r := &recorder{}
	a := open(t, srv, "a", c, r, "librato")
	// The previous release's running total of req/web.1: started 10
	// buckets ago at sum 1000 over 40 values.
	before := start.Add(-10 * res).Unix()
	field := strconv.Itoa(int(metric.Counter)) + "\x00\x00req\x00web.1"
	p := partition("", "req", "web.1", 4)
	if _, err := srv.Do("HSET", a.keys(p).totals(), field, fmt.Sprintf("%d 1000 40 %d", before, start.Add(-res).Unix())); err != nil {
		t.Fatal(err)
	}
	billing := sharedApp(t, "billing", []string{""}, "req")
	var ms []metric.Measurement
	for _, app := range []string{"", billing} {
		ms = append(ms, metric.Measurement{App: app, Name: "req", Source: "web.1", Kind: metric.Counter, Value: 7})
	}
	if err := a.Handover(ctx, takeApps(t, start, ms)); err != nil {
		t.Fatal(err)
	}
	c.set(start.Add(res + 2*time.Second))
	a.Tick(ctx)
	a.Tick(ctx)
	var single, app *aggregate.Series
	for _, bk := range r.buckets("librato") {
		for i, s := range bk.Series {
			switch s.App {
			case "":
				single = &bk.Series[i]
			case billing:
				app = &bk.Series[i]
			}
		}
	}
	if single == nil || single.Totals == nil || single.Totals.Sum != 1007 || single.Totals.Count != 41 || single.Totals.Start.Unix() != before {
		t.Errorf("single-app series: %+v, want the old running total continued (1007 over 41 since %d)", single, before)
	}
	if app == nil || app.Totals == nil || app.Totals.Sum != 7 || app.Totals.Count != 1 || !app.Totals.Start.Equal(start) {
		t.Errorf("billing's series: %+v, want a running total of its own (7 over 1 since %v)", app, start)
	}
}

// TestAppsFallback: a worker's fallback of one app's series leaves the same
// name and source of another app, in the same partition, to Redis: the
// fallback record names the app.
func TestAppsFallback(t *testing.T) {
	const src = "web.1"
	billing := sharedApp(t, "billing", []string{"shop"}, "req")
	srv := redistest.Start(t)
	ctx := context.Background()
	start := time.Now().Truncate(res).Add(-time.Hour)
	c := &clock{t: start.Add(time.Second)}
	r := &recorder{}
	a := open(t, srv, "a", c, r, "librato")
	b := open(t, srv, "b", c, r, "librato")
	m := func(app string, v float64) metric.Measurement {
		return metric.Measurement{App: app, Name: "req", Source: src, Kind: metric.Counter, Value: v}
	}
	if err := a.Handover(ctx, takeApps(t, start, []metric.Measurement{m(billing, 1), m("shop", 2)})); err != nil {
		t.Fatal(err)
	}
	// b saw billing only, while Redis was down; it sends its own part
	// itself, then records that at its first hand-over Redis answers.
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := b.Handover(ctx, takeApps(t, start, []metric.Measurement{m(billing, 40)})); err == nil {
		t.Fatal("hand-over to a paused Redis succeeded")
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	sent := b.TakeUnsent(start)
	if len(sent) != 1 || len(sent[0].States) != 1 || sent[0].States[0].App != billing || sent[0].States[0].Series().Sum != 40 {
		t.Fatalf("TakeUnsent: %+v", sent)
	}
	if err := b.Handover(ctx, nil); err != nil {
		t.Fatal(err)
	}
	c.set(start.Add(res + 2*time.Second))
	a.Tick(ctx)
	a.Tick(ctx)
	got := map[string]float64{}
	for _, bk := range r.buckets("librato") {
		for _, s := range bk.Series {
			got[s.App] = s.Sum
		}
	}
	// billing's req went out from b's fallback (40) and not from Redis; a's
	// part of it is excluded and counted; shop's is delivered from Redis.
	if want := map[string]float64{"shop": 2}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delivered from Redis %v, want %v", got, want)
	}
	if st := a.Stats(); st.FallbackExcluded != 1 {
		t.Errorf("fallback excluded %d series, want billing's 1", st.FallbackExcluded)
	}
}

// TestSeriesLine: the fallback record's series lines, of both forms.
func TestSeriesLine(t *testing.T) {
	for _, k := range []skey{{"", "req", "web.1"}, {"billing", "req", "web.1"}, {"shop", "a.b", ""}, {"", "", ""}} {
		if got, ok := parseLine(k.line()); !ok || got != k {
			t.Errorf("parseLine(%q) = %+v %v, want %+v", k.line(), got, ok, k)
		}
	}
	// The previous release's form: no app.
	if got, ok := parseLine("req\x00web.1"); !ok || got != (skey{"", "req", "web.1"}) {
		t.Errorf("previous release's line: %+v %v", got, ok)
	}
	if _, ok := parseLine("no separator"); ok {
		t.Error("a line without NUL parsed")
	}
}

// TestAppsFrameIDs: each app's Logplex Frame-Ids are its own in Redis; the
// single-app key is the one of the previous release.
func TestAppsFrameIDs(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	c := &clock{t: time.Now()}
	a := open(t, srv, "a", c, &recorder{}, "x")
	b := open(t, srv, "b", c, &recorder{}, "x")
	for _, tc := range []struct {
		s        *Store
		app, id  string
		wantSeen bool
	}{
		{a, "billing", "f1", false},
		{b, "shop", "f1", false},   // another app's body with the same Frame-Id
		{a, "", "f1", false},       // single-app mode's
		{b, "billing", "f1", true}, // billing's retry, on the other worker
		{a, "shop", "f1", true},
		{b, "", "f1", true},
	} {
		if dup, err := tc.s.FrameSeen(ctx, tc.app, tc.id, time.Minute); dup != tc.wantSeen || err != nil {
			t.Errorf("FrameSeen(%q, %q) on %s = %v, %v; want %v", tc.app, tc.id, tc.s.cfg.ID, dup, err, tc.wantSeen)
		}
	}
	for _, k := range []string{"dm:frame:f1", "dm:aframe:billing:f1", "dm:aframe:shop:f1"} {
		if n, err := srv.Do("EXISTS", k); n != "1" || err != nil {
			t.Errorf("key %s: EXISTS %s %v", k, n, err)
		}
	}
}
