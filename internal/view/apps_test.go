package view

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/dynometrics/dynometrics/internal/metric"
)

// TestApps: in multi-app mode the view keeps two apps' series with the same
// name and dyno apart; /api/metrics lists the apps and the chosen app's
// metrics, /api/series takes app=, and the merged all-dynos line of a
// measure stays within its app.
func TestApps(t *testing.T) {
	var ms []metric.Measurement
	for i, app := range []string{"billing", "shop"} {
		ms = append(ms,
			metric.Measurement{App: app, Name: "load", Source: "web.1", Time: at(0, 5), Kind: metric.Sample, Value: float64(i + 1)},
			metric.Measurement{App: app, Name: "lat", Source: "web.1", Time: at(0, 6), Kind: metric.Measure, Value: float64(10 * (i + 1))},
		)
	}
	ms = append(ms, metric.Measurement{App: "shop", Name: "only_shop", Source: "web.2", Time: at(0, 7), Kind: metric.Counter, Value: 3})
	h := newHistory(t, Config{})
	for _, b := range flushed(t, ms) {
		h.Write(b)
	}
	hd := h.Handler(HandlerConfig{})
	type appsAnswer struct {
		App     string
		Apps    []string
		Metrics []struct{ Name string }
	}
	for path, want := range map[string]string{
		"/api/metrics":             "billing [billing shop] [lat load]",
		"/api/metrics?app=shop":    "shop [billing shop] [lat load only_shop]",
		"/api/metrics?app=nothere": "billing [billing shop] [lat load]",
	} {
		var a appsAnswer
		get(t, hd, path, &a)
		var names []string
		for _, m := range a.Metrics {
			names = append(names, m.Name)
		}
		if got := fmt.Sprint(a.App, " ", a.Apps, " ", names); got != want {
			t.Errorf("GET %s: %s, want %s", path, got, want)
		}
	}
	for path, want := range map[string]map[string][][2]float64{
		"/api/series?name=load&app=billing": {"*": {{sec(0), 1}}, "web.1": {{sec(0), 1}}},
		"/api/series?name=load&app=shop":    {"*": {{sec(0), 2}}, "web.1": {{sec(0), 2}}},
		"/api/series?name=lat&app=shop":     {"*": {{sec(0), 20}}, "web.1": {{sec(0), 20}}},
	} {
		var a seriesAnswer
		get(t, hd, path, &a)
		if fmt.Sprint(a.points()) != fmt.Sprint(want) {
			t.Errorf("GET %s: %v, want %v", path, a.points(), want)
		}
	}
	for _, path := range []string{"/api/series?name=load", "/api/series?name=only_shop&app=billing"} {
		if rec := get(t, hd, path, nil); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, rec.Code)
		}
	}
	if st := h.Stats(); st.DroppedConflict != 0 {
		t.Errorf("stats %+v", st)
	}
}
