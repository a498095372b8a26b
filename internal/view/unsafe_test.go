package view

import (
	"testing"

	"github.com/dynometrics/dynometrics/internal/metric"
)

// TestUnsafeNamesNotShown: a series whose name or source holds a
// bidirectional override or a control character is not shown (it could
// make the page show another name) and is counted; the others are.
func TestUnsafeNamesNotShown(t *testing.T) {
	h := newHistory(t, Config{})
	c := func(name, src string) metric.Measurement {
		return metric.Measurement{Name: name, Source: src, Kind: metric.Counter, Value: 1, Time: at(0, 1)}
	}
	for _, b := range flushed(t, []metric.Measurement{
		c("abc\u202egnp.exe", "web.1"), c("ok", "web\u20661"), c("ok", "web.2"), c("tab\tname", "web.1"),
	}) {
		h.Write(b)
	}
	var m metricsAnswer
	get(t, h.Handler(HandlerConfig{}), MetricsPath, &m)
	if len(m.Metrics) != 1 || m.Metrics[0].Name != "ok" || len(m.Metrics[0].Sources) != 1 || m.Metrics[0].Sources[0].Source != "web.2" {
		t.Errorf("shown %+v, want only ok from web.2", m.Metrics)
	}
	if st := h.Stats(); st.DroppedUnsafe != 3 {
		t.Errorf("DroppedUnsafe %d, want 3", st.DroppedUnsafe)
	}
}
