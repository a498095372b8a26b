package view

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// sec returns the Unix seconds of bucket i (minutes after t0).
func sec(i int) float64 { return float64(t0.Add(time.Duration(i) * time.Minute).Unix()) }

// at returns a time s seconds into bucket i.
func at(i, s int) time.Time {
	return t0.Add(time.Duration(i)*time.Minute + time.Duration(s)*time.Second)
}

// flushed aggregates ms with the real aggregator (60 s buckets) and returns
// its buckets in time order, as the worker hands them to its viewers.
func flushed(t testing.TB, ms []metric.Measurement) []*aggregate.Bucket {
	t.Helper()
	latest := t0
	for _, m := range ms {
		if m.Time.After(latest) {
			latest = m.Time
		}
	}
	a, err := aggregate.New(aggregate.Config{Resolution: time.Minute, MaxSeries: 1 << 20, Now: func() time.Time { return latest }})
	if err != nil {
		t.Fatal(err)
	}
	a.Add(ms)
	bs := a.FlushAll()
	slices.SortFunc(bs, func(x, y *aggregate.Bucket) int { return x.Start.Compare(y.Start) })
	return bs
}

func newHistory(t testing.TB, cfg Config) *History {
	t.Helper()
	if cfg.Resolution == 0 {
		cfg.Resolution = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type seriesAnswer struct {
	Name, Kind, Unit, Stat string
	Resolution, Latest     int64
	Series                 []struct {
		Source string
		Last   int64
		Ended  bool
		Points [][2]float64
	}
}

// points returns the answer's points by source.
func (a seriesAnswer) points() map[string][][2]float64 {
	out := map[string][][2]float64{}
	for _, s := range a.Series {
		out[s.Source] = s.Points
	}
	return out
}

type metricsAnswer struct {
	Version    uint64
	Resolution int64
	Window     int64
	Latest     int64
	AllSource  string `json:"all_source"`
	Metrics    []struct {
		Name, Kind, Unit string
		Updated          int64
		Sources          []struct {
			Source string
			Last   int64
			Ended  bool
		}
	}
}

// get serves one GET request and decodes a 200 answer into v.
func get(t *testing.T, h http.Handler, path string, v any) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if v != nil {
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, rec.Body)
		}
	}
	return rec
}

func series(t *testing.T, h http.Handler, name, stat string) seriesAnswer {
	t.Helper()
	q := "/api/series?name=" + url.QueryEscape(name)
	if stat != "" {
		q += "&stat=" + stat
	}
	var a seriesAnswer
	get(t, h, q, &a)
	return a
}

// twoDynos is three buckets of two dynos: counts, samples and measures, with
// a bucket that only one dyno has for each.
func twoDynos() []metric.Measurement {
	c := func(src string, tm time.Time, v float64) metric.Measurement {
		return metric.Measurement{Name: "http.requests", Source: src, Time: tm, Kind: metric.Counter, Value: v}
	}
	s := func(src string, tm time.Time, v float64) metric.Measurement {
		return metric.Measurement{Name: "memory_rss", Source: src, Time: tm, Kind: metric.Sample, Value: v, Unit: "MB"}
	}
	m := func(src string, tm time.Time, v float64) metric.Measurement {
		return metric.Measurement{Name: "db.latency", Source: src, Time: tm, Kind: metric.Measure, Value: v, Unit: "ms"}
	}
	return []metric.Measurement{
		c("web.1", at(0, 1), 1), c("web.1", at(0, 2), 2), c("web.2", at(0, 3), 4),
		c("web.1", at(1, 1), 3),
		c("web.2", at(2, 1), 5), c("web.2", at(2, 50), 0.5),

		// Last by time, not by arrival: 300 at 0:20 beats 200 at 0:05 sent later.
		s("web.1", at(0, 10), 100), s("web.1", at(0, 20), 300), s("web.1", at(0, 5), 200), s("web.2", at(0, 30), 50),
		s("web.1", at(1, 10), 120.5), s("web.2", at(1, 59), 60),
		s("web.1", at(2, 0), 130),

		m("web.1", at(0, 1), 3), m("web.1", at(0, 2), 1), m("web.1", at(0, 3), 4), m("web.1", at(0, 4), 2),
		m("web.2", at(0, 1), 50), m("web.2", at(0, 2), 10), m("web.2", at(0, 3), 40), m("web.2", at(0, 4), 20), m("web.2", at(0, 5), 30),
		m("web.1", at(1, 1), 5), m("web.2", at(1, 2), 7), m("web.2", at(1, 3), 6),
		m("web.1", at(2, 30), -1.25),
	}
}

// TestSeriesValues checks every point of the API against values worked out
// by hand from the lines: count sums per bucket, last samples by time,
// measure statistics by nearest rank, and the all-dynos line.
func TestSeriesValues(t *testing.T) {
	h := newHistory(t, Config{})
	for _, b := range flushed(t, twoDynos()) {
		h.Write(b)
	}
	hd := h.Handler(HandlerConfig{})
	type want = map[string][][2]float64
	tests := map[string]struct {
		name, stat, kind, unit, wantStat string
		want                             want
	}{
		"count sums": {"http.requests", "", "count", "", "sum", want{
			"*":     {{sec(0), 7}, {sec(1), 3}, {sec(2), 5.5}},
			"web.1": {{sec(0), 3}, {sec(1), 3}},
			"web.2": {{sec(0), 4}, {sec(2), 5.5}},
		}},
		"sample last values, all dynos averaged": {"memory_rss", "", "sample", "MB", "last", want{
			"*":     {{sec(0), 175}, {sec(1), 90.25}, {sec(2), 130}},
			"web.1": {{sec(0), 300}, {sec(1), 120.5}, {sec(2), 130}},
			"web.2": {{sec(0), 50}, {sec(1), 60}},
		}},
		// web.1 {1,2,3,4} and web.2 {10,20,30,40,50}: the merged median is
		// 10 (the 5th of 9 values), where the mean of the medians would be 16.
		"measure median (default)": {"db.latency", "", "measure", "ms", "median", want{
			"*":     {{sec(0), 10}, {sec(1), 6}, {sec(2), -1.25}},
			"web.1": {{sec(0), 2}, {sec(1), 5}, {sec(2), -1.25}},
			"web.2": {{sec(0), 30}, {sec(1), 6}},
		}},
		"measure perc95": {"db.latency", "perc95", "measure", "ms", "perc95", want{
			"*":     {{sec(0), 50}, {sec(1), 7}, {sec(2), -1.25}},
			"web.1": {{sec(0), 4}, {sec(1), 5}, {sec(2), -1.25}},
			"web.2": {{sec(0), 50}, {sec(1), 7}},
		}},
		"measure perc99": {"db.latency", "perc99", "measure", "ms", "perc99", want{
			"*":     {{sec(0), 50}, {sec(1), 7}, {sec(2), -1.25}},
			"web.1": {{sec(0), 4}, {sec(1), 5}, {sec(2), -1.25}},
			"web.2": {{sec(0), 50}, {sec(1), 7}},
		}},
		"measure max": {"db.latency", "max", "measure", "ms", "max", want{
			"*":     {{sec(0), 50}, {sec(1), 7}, {sec(2), -1.25}},
			"web.1": {{sec(0), 4}, {sec(1), 5}, {sec(2), -1.25}},
			"web.2": {{sec(0), 50}, {sec(1), 7}},
		}},
		"measure count": {"db.latency", "count", "measure", "ms", "count", want{
			"*":     {{sec(0), 9}, {sec(1), 3}, {sec(2), 1}},
			"web.1": {{sec(0), 4}, {sec(1), 1}, {sec(2), 1}},
			"web.2": {{sec(0), 5}, {sec(1), 2}},
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := series(t, hd, tc.name, tc.stat)
			if a.Name != tc.name || a.Kind != tc.kind || a.Unit != tc.unit || a.Stat != tc.wantStat {
				t.Errorf("header = %q %q %q %q, want %q %q %q %q", a.Name, a.Kind, a.Unit, a.Stat, tc.name, tc.kind, tc.unit, tc.wantStat)
			}
			if a.Resolution != 60 || a.Latest != int64(sec(2)) {
				t.Errorf("resolution %d latest %d, want 60 %d", a.Resolution, a.Latest, int64(sec(2)))
			}
			if got := a.points(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("points:\n got %v\nwant %v", got, tc.want)
			}
			var order []string
			for _, s := range a.Series {
				order = append(order, s.Source)
			}
			if !slices.Equal(order, []string{"*", "web.1", "web.2"}) {
				t.Errorf("sources in order %q, want the all-dynos line first, then by name", order)
			}
		})
	}
}

// TestMergedDistribution checks the all-dynos percentiles of measures
// beyond aggregate.ExactLimit values, where the states are sketches: within
// the sketch's accuracy of the exact percentile of all values together.
func TestMergedDistribution(t *testing.T) {
	var ms []metric.Measurement
	var all []float64
	for i := range 3000 {
		v := float64(i + 1)
		src := "web.1"
		if i%3 == 0 { // web.2 gets every third value: different distributions
			src, v = "web.2", v*10
		}
		all = append(all, v)
		ms = append(ms, metric.Measurement{Name: "lat", Source: src, Time: at(0, i%60), Kind: metric.Measure, Value: v})
	}
	h := newHistory(t, Config{})
	for _, b := range flushed(t, ms) {
		h.Write(b)
	}
	slices.Sort(all)
	hd := h.Handler(HandlerConfig{})
	for stat, rank := range map[string]int{"median": 1500, "perc95": 2850, "perc99": 2970} {
		got := series(t, hd, "lat", stat).points()["*"]
		want := all[rank-1]
		if len(got) != 1 || math.Abs(got[0][1]-want)/want > aggregate.SketchAccuracy {
			t.Errorf("%s of all dynos = %v, want %v within %v", stat, got, want, aggregate.SketchAccuracy)
		}
	}
	if got := series(t, hd, "lat", "count").points()["*"]; got[0][1] != 3000 {
		t.Errorf("count of all dynos = %v, want 3000", got[0][1])
	}
	if got := series(t, hd, "lat", "max").points()["*"]; got[0][1] != 29980 {
		t.Errorf("max of all dynos = %v, want 29980", got[0][1])
	}
}

func TestMetricsList(t *testing.T) {
	h := newHistory(t, Config{})
	bs := flushed(t, twoDynos())
	for _, b := range bs {
		h.Write(b)
	}
	var a metricsAnswer
	get(t, h.Handler(HandlerConfig{}), "/api/metrics", &a)
	if a.Resolution != 60 || a.Window != 6*3600 || a.Latest != int64(sec(2)) || a.AllSource != "*" || a.Version != 3 {
		t.Errorf("header = %+v", a)
	}
	type src struct {
		Source string
		Last   int64
		Ended  bool
	}
	type m struct {
		Name, Kind, Unit string
		Updated          int64
		Sources          []src
	}
	want := []m{
		{"db.latency", "measure", "ms", int64(sec(2)), []src{{"web.1", int64(sec(2)), false}, {"web.2", int64(sec(1)), false}}},
		{"http.requests", "count", "", int64(sec(2)), []src{{"web.1", int64(sec(1)), false}, {"web.2", int64(sec(2)), false}}},
		{"memory_rss", "sample", "MB", int64(sec(2)), []src{{"web.1", int64(sec(2)), false}, {"web.2", int64(sec(1)), false}}},
	}
	var got []m
	for _, x := range a.Metrics {
		mm := m{x.Name, x.Kind, x.Unit, x.Updated, nil}
		for _, s := range x.Sources {
			mm.Sources = append(mm.Sources, src(s))
		}
		got = append(got, mm)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("metrics:\n got %+v\nwant %+v", got, want)
	}
}

// TestEndedAndNewDynos: a dyno that stops is reported ended once it missed
// EndedAfter buckets and EndedAfterMin; a new dyno appears with its first
// bucket; lines whose points all left the window are forgotten.
func TestEndedAndNewDynos(t *testing.T) {
	h := newHistory(t, Config{Window: 10 * time.Minute})
	hd := h.Handler(HandlerConfig{})
	write := func(i int, srcs ...string) {
		var ms []metric.Measurement
		for _, s := range srcs {
			ms = append(ms, metric.Measurement{Name: "x", Source: s, Time: at(i, 0), Kind: metric.Counter, Value: float64(i)})
		}
		for _, b := range flushed(t, ms) {
			h.Write(b)
		}
	}
	ended := func() map[string]bool {
		var a metricsAnswer
		get(t, hd, "/api/metrics", &a)
		out := map[string]bool{}
		for _, m := range a.Metrics {
			for _, s := range m.Sources {
				out[s.Source] = s.Ended
			}
		}
		return out
	}
	write(0, "web.1", "web.2")
	write(1, "web.1", "web.2")
	write(2, "web.1") // web.2 stopped after bucket 1
	write(3, "web.1")
	if got := ended(); !reflect.DeepEqual(got, map[string]bool{"web.1": false, "web.2": false}) {
		t.Errorf("after 2 buckets without web.2: %v, want neither ended (EndedAfter=%d)", got, EndedAfter)
	}
	write(4, "web.1", "web.3") // web.3 starts
	if got := ended(); !reflect.DeepEqual(got, map[string]bool{"web.1": false, "web.2": true, "web.3": false}) {
		t.Errorf("after 3 buckets without web.2: %v, want web.2 ended, web.3 new", got)
	}
	a := series(t, hd, "x", "")
	if got, want := a.points()["web.3"], [][2]float64{{sec(4), 4}}; !reflect.DeepEqual(got, want) {
		t.Errorf("web.3 = %v, want %v", got, want)
	}
	if !a.Series[2].Ended || a.Series[2].Source != "web.2" || a.Series[2].Last != int64(sec(1)) {
		t.Errorf("web.2 line = %+v, want ended with last %d", a.Series[2], int64(sec(1)))
	}
	// Ten-minute window: at bucket 11, web.2's last point (bucket 1) is out.
	write(11, "web.1")
	if got := ended(); !reflect.DeepEqual(got, map[string]bool{"web.1": false, "web.3": true}) {
		t.Errorf("after web.2 left the window: %v", got)
	}
	if got, want := series(t, hd, "x", "").points()["web.1"], [][2]float64{{sec(2), 2}, {sec(3), 3}, {sec(4), 4}, {sec(11), 11}}; !reflect.DeepEqual(got, want) {
		t.Errorf("web.1 in the window = %v, want %v", got, want)
	}
	if st := h.Stats(); st.Series != 2 || st.Metrics != 1 {
		t.Errorf("stats %+v, want 2 series of 1 metric", st)
	}
	write(30, "web.9") // everything else left the window
	if st := h.Stats(); st.Series != 1 {
		t.Errorf("stats %+v, want 1 series", st)
	}
}

// TestBounds: the series cap, conflicting series and foreign periods are
// dropped and counted; a kind change resets the metric's history.
func TestBounds(t *testing.T) {
	var logs bytes.Buffer
	h := newHistory(t, Config{MaxSeries: 3, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	var ms []metric.Measurement
	for _, s := range []string{"web.1", "web.2", "web.3", "web.4", "web.5"} {
		ms = append(ms, metric.Measurement{Name: "req", Source: s, Time: at(0, 0), Kind: metric.Counter, Value: 2})
	}
	ms = append(ms,
		metric.Measurement{Name: "a", Source: "*", Time: at(0, 0), Kind: metric.Counter, Value: 1},      // reserved source
		metric.Measurement{Name: "req", Source: "*", Time: at(0, 0), Kind: metric.Counter, Value: 1},    // reserved source
		metric.Measurement{Name: "lat", Source: "web.1", Time: at(0, 0), Kind: metric.Sample, Value: 1}, // sorted first: takes a slot
	)
	for _, b := range flushed(t, ms) {
		h.Write(b)
	}
	hd := h.Handler(HandlerConfig{})
	// The cap limits the lines shown; the all-dynos line still counts every dyno.
	// Buckets are sorted by name, so lat/web.1 takes the first slot.
	if got, want := series(t, hd, "req", "").points(), map[string][][2]float64{
		"*": {{sec(0), 10}}, "web.1": {{sec(0), 2}}, "web.2": {{sec(0), 2}},
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("req = %v, want %v", got, want)
	}
	st := h.Stats()
	if st.DroppedSeriesLimit != 3 || st.DroppedConflict != 2 || st.Series != 3 || st.Metrics != 2 {
		t.Errorf("stats = %+v, want 3 dropped for the cap (req from web.3, web.4, web.5), 2 conflicts, 3 series (lat, req)", st)
	}
	for _, w := range []string{"series cap reached", `source \"*\" is reserved`} {
		if strings.Count(logs.String(), w) != 1 {
			t.Errorf("want one warning with %q: %q", w, logs.String())
		}
	}
	if rec := get(t, hd, "/api/series?name=a", nil); rec.Code != http.StatusNotFound {
		t.Errorf("metric with only the reserved source: %d, want 404", rec.Code)
	}

	h.Write(&aggregate.Bucket{Start: at(1, 0), Period: time.Second, Series: []aggregate.Series{{Name: "req", Source: "web.1", Kind: metric.Counter, Sum: 1}}})
	if st := h.Stats(); st.DroppedPeriod != 1 {
		t.Errorf("DroppedPeriod = %d, want 1", st.DroppedPeriod)
	}
	// A bucket older than the window (6 h at 1 min: 360 buckets) is dropped.
	h.Write(&aggregate.Bucket{Start: at(400, 0), Period: time.Minute, Series: []aggregate.Series{{Name: "req", Source: "web.1", Kind: metric.Counter, Sum: 1}}})
	h.Write(&aggregate.Bucket{Start: at(40, 0), Period: time.Minute, Series: []aggregate.Series{{Name: "req", Source: "web.9", Kind: metric.Counter, Sum: 1}}})
	if st := h.Stats(); st.DroppedOld != 1 || st.Series != 1 {
		t.Errorf("stats = %+v, want 1 dropped as old, and only req/web.1 left", st)
	}

	// Kind and unit conflicts within a bucket: the first source decides.
	h2 := newHistory(t, Config{})
	h2.Write(&aggregate.Bucket{Start: at(0, 0), Period: time.Minute, Series: []aggregate.Series{
		{Name: "q", Source: "web.1", Kind: metric.Sample, Unit: "ms", Last: 5},
		{Name: "q", Source: "web.2", Kind: metric.Sample, Unit: "s", Last: 1},
		{Name: "q", Source: "web.3", Kind: metric.Counter, Unit: "ms", Sum: 3},
		{Name: "q", Source: "web.4", Kind: metric.Sample, Unit: "ms", Last: 7},
	}})
	hd2 := h2.Handler(HandlerConfig{})
	if got, want := series(t, hd2, "q", "").points(), map[string][][2]float64{
		"*": {{sec(0), 6}}, "web.1": {{sec(0), 5}}, "web.4": {{sec(0), 7}},
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("q = %v, want %v", got, want)
	}
	if st := h2.Stats(); st.DroppedConflict != 2 {
		t.Errorf("DroppedConflict = %d, want 2", st.DroppedConflict)
	}
	// The unit changes (a deploy): the old points are in another unit, so
	// the history of the metric starts over.
	h2.Write(&aggregate.Bucket{Start: at(1, 0), Period: time.Minute, Series: []aggregate.Series{
		{Name: "q", Source: "web.1", Kind: metric.Sample, Unit: "s", Last: 0.5},
	}})
	a := series(t, hd2, "q", "")
	if got, want := a.points(), map[string][][2]float64{"*": {{sec(1), 0.5}}, "web.1": {{sec(1), 0.5}}}; !reflect.DeepEqual(got, want) || a.Unit != "s" {
		t.Errorf("after the unit change: %s %v, want s %v", a.Unit, got, want)
	}
	if st := h2.Stats(); st.Resets != 1 || st.Series != 1 {
		t.Errorf("stats = %+v, want 1 reset, 1 series", st)
	}
}

// TestMaxPoints: a line keeps at most MaxPoints points, the newest.
func TestMaxPoints(t *testing.T) {
	h := newHistory(t, Config{MaxPoints: 3})
	if h.Points() != 3 {
		t.Fatalf("Points() = %d", h.Points())
	}
	for i := range 6 {
		h.Write(&aggregate.Bucket{Start: at(i, 0), Period: time.Minute, Series: []aggregate.Series{
			{Name: "c", Source: "web.1", Kind: metric.Counter, Sum: float64(i * 10)},
		}})
	}
	want := [][2]float64{{sec(3), 30}, {sec(4), 40}, {sec(5), 50}}
	if got := series(t, h.Handler(HandlerConfig{}), "c", "").points(); !reflect.DeepEqual(got["web.1"], want) || !reflect.DeepEqual(got["*"], want) {
		t.Errorf("points = %v, want %v for both lines", got, want)
	}
	if st := h.Stats(); st.Values != 6 { // two rings of 3 slots: never beyond MaxPoints
		t.Errorf("Values = %d, want 8", st.Values)
	}
}

// TestLineModel writes random points, mostly in order, sometimes late or
// repeated or after a long gap, and compares the line with a plain map.
func TestLineModel(t *testing.T) {
	for _, max := range []int{1, 2, 5, 64} {
		var l line
		model := map[int64]float64{}
		seq := []int64{10, 11, 12, 12, 9, 15, 14, 40, 41, 38, 39, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 95, 111, 200, 199, 198, 197, 196, 260, 261, 262, 263, 264, 265}
		newest := int64(-1)
		for n, idx := range seq {
			v := float64(n) + 0.5
			if idx <= newest-int64(max) {
				// Older than the line can hold: ignored.
			} else {
				model[idx] = v
			}
			newest = maxInt(newest, idx)
			l.put(idx, []float64{v}, max)

			var got [][2]float64
			l.each(math.MinInt64, func(i int64, v []float64) { got = append(got, [2]float64{float64(i), v[0]}) })
			var want [][2]float64
			for i := newest - int64(max) + 1; i <= newest; i++ {
				if v, ok := model[i]; ok {
					want = append(want, [2]float64{float64(i), v})
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("max %d after put(%d): got %v, want %v", max, idx, got, want)
			}
			if l.slots(1) > max {
				t.Fatalf("max %d: %d slots", max, l.slots(1))
			}
		}
	}
}

func maxInt(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func TestHandler(t *testing.T) {
	h := newHistory(t, Config{})
	for _, b := range flushed(t, twoDynos()) {
		h.Write(b)
	}
	hd := h.Handler(HandlerConfig{})
	tests := map[string]struct {
		path   string
		status int
		body   string
	}{
		"page":                    {"/", 200, `<script src="assets/view.js">`},
		"script":                  {"/assets/view.js", 200, "api/metrics"},
		"uPlot":                   {"/assets/uplot/uPlot.iife.min.js", 200, "uPlot"},
		"uPlot style":             {"/assets/uplot/uPlot.min.css", 200, ".uplot"},
		"uPlot licence":           {"/assets/uplot/LICENSE", 200, "MIT License"},
		"no name":                 {"/api/series", 400, `"name: missing`},
		"bad stat":                {"/api/series?name=db.latency&stat=p50", 400, `stat=\"p50\": want median, perc95, perc99, max or count`},
		"unknown name":            {"/api/series?name=nope", 404, `no such metric`},
		"other path":              {"/nope", 404, ""},
		"stat ignored for counts": {"/api/series?name=http.requests&stat=max", 200, `"stat":"sum"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec := get(t, hd, tc.path, nil)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("GET %s = %d %.200q, want %d containing %q", tc.path, rec.Code, rec.Body.String(), tc.status, tc.body)
			}
			if csp := rec.Header().Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self'") {
				t.Errorf("Content-Security-Policy = %q", csp)
			}
		})
	}
	if rec := httptest.NewRecorder(); true {
		hd.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/metrics", nil))
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("POST /api/metrics = %d, want 405", rec.Code)
		}
	}
}

// TestNotModified: a client that holds the current version gets 304 until
// a bucket arrives.
func TestNotModified(t *testing.T) {
	h := newHistory(t, Config{})
	bs := flushed(t, twoDynos())
	h.Write(bs[0])
	hd := h.Handler(HandlerConfig{})
	for _, path := range []string{"/api/metrics", "/api/series?name=http.requests"} {
		rec := get(t, hd, path, nil)
		etag := rec.Header().Get("ETag")
		if rec.Code != 200 || etag != `"1"` {
			t.Fatalf("GET %s: %d ETag %q", path, rec.Code, etag)
		}
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("If-None-Match", etag)
		rec = httptest.NewRecorder()
		hd.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
			t.Errorf("GET %s with the current ETag: %d %q, want 304", path, rec.Code, rec.Body)
		}
	}
	h.Write(bs[1])
	req := httptest.NewRequest(http.MethodGet, "/api/metrics", nil)
	req.Header.Set("If-None-Match", `"1"`)
	rec := httptest.NewRecorder()
	hd.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Header().Get("ETag") != `"2"` {
		t.Errorf("after a new bucket: %d ETag %q, want 200 \"2\"", rec.Code, rec.Header().Get("ETag"))
	}
}

func TestBasicAuth(t *testing.T) {
	tests := map[string]struct {
		user, pass string
		set        bool
		status     int
	}{
		"none":           {"", "", false, 401},
		"wrong password": {"ops", "s3cre", true, 401},
		"wrong user":     {"op", "s3cret", true, 401},
		"swapped":        {"s3cret", "ops", true, 401},
		"right":          {"ops", "s3cret", true, 200},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// A handler of its own: three failures per case, below FreeLoginFailures.
			hd := newHistory(t, Config{}).Handler(HandlerConfig{User: "ops", Password: "s3cret"})
			for _, path := range []string{"/", "/api/metrics", "/assets/view.js"} {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				if tc.set {
					req.SetBasicAuth(tc.user, tc.pass)
				}
				rec := httptest.NewRecorder()
				hd.ServeHTTP(rec, req)
				if rec.Code != tc.status {
					t.Errorf("GET %s: %d, want %d", path, rec.Code, tc.status)
				}
				if tc.status == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic ") {
					t.Errorf("GET %s: no Basic challenge", path)
				}
				if strings.Contains(rec.Body.String(), "s3cret") {
					t.Errorf("GET %s: the answer carries the password", path)
				}
			}
		})
	}
}

// TestGzip: large answers are compressed for clients that accept it.
func TestGzip(t *testing.T) {
	h := newHistory(t, Config{})
	var ms []metric.Measurement
	for i := range 60 {
		for _, s := range []string{"web.1", "web.2", "web.3"} {
			ms = append(ms, metric.Measurement{Name: "c", Source: s, Time: at(i, 0), Kind: metric.Counter, Value: float64(i)})
		}
	}
	for _, b := range flushed(t, ms) {
		h.Write(b)
	}
	req := httptest.NewRequest(http.MethodGet, "/api/series?name=c", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	h.Handler(HandlerConfig{}).ServeHTTP(rec, req)
	if rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding = %q, want gzip", rec.Header().Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	var a seriesAnswer
	if err := json.NewDecoder(zr).Decode(&a); err != nil {
		t.Fatal(err)
	}
	if p := a.points()["*"]; len(p) != 60 || p[59] != [2]float64{sec(59), 59 * 3} {
		t.Errorf("decompressed all-dynos line: %d points, last %v", len(p), p[len(p)-1])
	}
}

func TestNewErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no resolution":       {},
		"fractional":          {Resolution: 1500 * time.Millisecond},
		"window < resolution": {Resolution: time.Minute, Window: time.Second},
		"negative points":     {Resolution: time.Minute, MaxPoints: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// blockingRecorder is a ResponseRecorder whose successful answers wait
// for release before their body is written: the request keeps its slot.
type blockingRecorder struct {
	*httptest.ResponseRecorder
	release chan struct{}
}

func (b blockingRecorder) Write(p []byte) (int, error) {
	if b.Code == 0 || b.Code == http.StatusOK {
		<-b.release
	}
	return b.ResponseRecorder.Write(p)
}

// TestBusy: with MaxConcurrentRequests API requests running, the others are
// answered 503 with Retry-After at once and counted (Stats.Busy); the
// running ones complete.
func TestBusy(t *testing.T) {
	h := newHistory(t, Config{})
	for _, b := range flushed(t, twoDynos()) {
		h.Write(b)
	}
	hd := h.Handler(HandlerConfig{})
	const extra = 4
	release := make(chan struct{})
	codes := make(chan *httptest.ResponseRecorder, MaxConcurrentRequests+extra)
	for range MaxConcurrentRequests + extra {
		go func() {
			rec := blockingRecorder{httptest.NewRecorder(), release}
			hd.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/metrics", nil)) // no gzip: written as it goes
			codes <- rec.ResponseRecorder
		}()
	}
	// Only the requests without a slot can answer before the release.
	for range extra {
		rec := <-codes
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
			t.Errorf("a request beyond the bound: %d, Retry-After %q; want 503, 1", rec.Code, rec.Header().Get("Retry-After"))
		}
	}
	close(release)
	for range MaxConcurrentRequests {
		if rec := <-codes; rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "http.requests") {
			t.Errorf("a request within the bound: %d %.100q, want 200 with the metrics", rec.Code, rec.Body.String())
		}
	}
	if st := h.Stats(); st.Busy != extra {
		t.Errorf("Busy = %d, want %d", st.Busy, extra)
	}
}

// Points returns the number of points a line holds at most.
func (h *History) Points() int { return h.points }
