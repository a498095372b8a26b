package aggregate

import (
	"fmt"
	"testing"

	"github.com/dynometrics/dynometrics/internal/metric"
)

// TestApps: the app is a dimension of every series: two apps' measurements
// with the same name and source are two series, sorted by app, and their
// states merge only within an app.
func TestApps(t *testing.T) {
	a := newTest(t, Config{})
	var ms []metric.Measurement
	for _, app := range []string{"shop", "billing", ""} {
		for i, v := range []float64{1, 2, 3} {
			m := msr("lat", "web.1", v*float64(len(app)+1), "ms", float64(i))
			m.App = app
			c := cnt("hits", "web.1", 1, float64(i))
			c.App = app
			ms = append(ms, m, c)
		}
	}
	a.Add(ms)
	bs := a.FlushAll()
	if len(bs) != 1 {
		t.Fatalf("%d buckets", len(bs))
	}
	var got []string
	for _, s := range bs[0].Series {
		got = append(got, fmt.Sprintf("%s/%s/%s n=%d sum=%v", s.App, s.Name, s.Source, s.Count, s.Sum))
	}
	want := []string{
		"/hits/web.1 n=3 sum=3", "/lat/web.1 n=3 sum=6",
		"billing/hits/web.1 n=3 sum=3", "billing/lat/web.1 n=3 sum=48",
		"shop/hits/web.1 n=3 sum=3", "shop/lat/web.1 n=3 sum=30",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	// Every app's series is known to admission after the flush (its hash
	// includes the app, as addOne's does).
	k := a.adm.known.Load()
	for _, app := range []string{"", "billing", "shop"} {
		if !k.has(appSeriesHash(a.seed, app, "lat", "web.1")) {
			t.Errorf("app %q: lat/web.1 not known after its flush", app)
		}
	}
	billing, shop := bs[0].Series[3].State, bs[0].Series[5].State
	if err := NewState("lat", "web.1", "ms", metric.Measure).Merge(shop); err == nil {
		t.Error("a single-app state merged an app's")
	}
	m := NewState("lat", "web.1", "ms", metric.Measure)
	m.App = "billing"
	if err := m.Merge(billing); err != nil || m.Merge(shop) == nil {
		t.Errorf("merge within an app: %v; across apps accepted", err)
	}
}
