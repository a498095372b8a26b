package view

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dynometrics/dynometrics/internal/input/budget"
)

// TestAnswerBudget: an API answer takes its estimated size from the budget
// it shares with the worker's request bodies while it is built and written;
// when the budget has no room, the request is answered 503 with
// Retry-After and counted, and the budget is whole again afterwards.
func TestAnswerBudget(t *testing.T) {
	h := newHistory(t, Config{})
	for _, b := range flushed(t, twoDynos()) {
		h.Write(b)
	}
	b := budget.New(1 << 20)
	hd := h.Handler(HandlerConfig{Budget: b})
	var m metricsAnswer
	get(t, hd, MetricsPath, &m)
	series(t, hd, "http.requests", "")
	if st := b.Stats(); st.Used != 0 || st.Peak == 0 {
		t.Fatalf("budget after two answers: %+v, want used 0 and a peak", st)
	}
	if !b.Take(1<<20 - 100) { // the request bodies in flight leave 100 bytes
		t.Fatal("Take")
	}
	for _, path := range []string{MetricsPath, SeriesPath + "?name=http.requests"} {
		rec := get(t, hd, path, nil)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
			t.Errorf("GET %s with 100 bytes left: %d Retry-After %q, want 503 and 1", path, rec.Code, rec.Header().Get("Retry-After"))
		}
	}
	if st := h.Stats(); st.Busy != 2 {
		t.Errorf("Busy %d, want 2", st.Busy)
	}
	b.Release(1<<20 - 100)
	rec := httptest.NewRecorder()
	hd.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, MetricsPath, nil))
	if rec.Code != http.StatusOK || b.Stats().Used != 0 {
		t.Errorf("after the budget freed: %d, used %d", rec.Code, b.Stats().Used)
	}
}
