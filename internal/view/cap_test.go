package view

import (
	"testing"

	"github.com/dynometrics/dynometrics/internal/metric"
)

// TestCapKeepsNewestSeries: at MaxSeries, a bucket with a new metric evicts
// the least recently updated series instead of leaving the new one out; the
// API says what the cap left out. Series all updated in the same bucket are
// not evicted for each other: the newcomer is dropped and counted.
func TestCapKeepsNewestSeries(t *testing.T) {
	h := newHistory(t, Config{MaxSeries: 4})
	hd := h.Handler(HandlerConfig{})
	c := func(name, src string, i int) metric.Measurement {
		return metric.Measurement{Name: name, Source: src, Kind: metric.Counter, Value: 1, Time: at(i, 1)}
	}
	for _, b := range flushed(t, []metric.Measurement{
		c("old", "web.1", 0), c("old", "web.2", 0), c("busy", "web.1", 0), c("busy", "web.2", 0),
		c("busy", "web.1", 1), c("busy", "web.2", 1), c("new", "web.3", 1),
	}) {
		h.Write(b)
	}
	var m struct {
		metricsAnswer
		Cap struct{ Max, Held, Evicted, Dropped int64 } `json:"series_cap"`
	}
	get(t, hd, MetricsPath, &m)
	names := map[string]int{}
	for _, x := range m.Metrics {
		names[x.Name] = len(x.Sources)
	}
	if names["new"] != 1 || names["busy"] != 2 || names["old"] != 1 {
		t.Errorf("metrics shown %v, want new 1, busy 2, old 1 (one of old's lines evicted)", names)
	}
	if m.Cap.Max != 4 || m.Cap.Held != 4 || m.Cap.Evicted != 1 || m.Cap.Dropped != 0 {
		t.Errorf("series_cap %+v, want max 4, held 4, evicted 1, dropped 0", m.Cap)
	}
	// Bucket 2: all four shown series update, and a fifth comes: nothing is
	// older than the bucket, so the newcomer is left out, and said so.
	for _, b := range flushed(t, []metric.Measurement{
		c("busy", "web.1", 2), c("busy", "web.2", 2), c("new", "web.3", 2), c("old", "web.1", 2), c("old", "web.2", 2),
	}) {
		h.Write(b)
	}
	get(t, hd, MetricsPath, &m)
	if st := h.Stats(); st.Evicted != 1 || st.DroppedSeriesLimit != 1 || m.Cap.Dropped != 1 || st.Series != 4 {
		t.Errorf("stats %+v, cap %+v; want 1 evicted, 1 dropped, 4 series", st, m.Cap)
	}
}
