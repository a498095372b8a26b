package browser_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestViewCapShowsNewMetric (here for startViewWorker, no browser needed) is issue 20's fifth finding: once the view held
// VIEW_MAX_SERIES series, a new metric stayed invisible for the whole window
// although the outlets delivered it. Now the least recently updated series
// make room, and the API says how many were left out.
func TestViewCapShowsNewMetric(t *testing.T) {
	var old []string
	for i := range 10 {
		old = append(old, fmt.Sprintf("source=web.%d count#old.metric=1", i))
	}
	vw := startViewWorker(t, old, "VIEW_MAX_SERIES=10", "METRICS_RESOLUTION=1s", "METRICS_GRACE=1s")
	type capInfo struct {
		Metrics []struct{ Name string }
		Cap     struct{ Max, Held, Evicted, Dropped int64 } `json:"series_cap"`
	}
	metricsNow := func() (c capInfo) {
		resp, err := http.Get(vw.url + "api/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	waitFor(t, "the ten old series shown", 10*time.Second, func() bool { return metricsNow().Cap.Held == 10 })
	time.Sleep(1100 * time.Millisecond) // a later bucket
	fmt.Fprintln(vw.stdin, "source=web.0 count#new.metric=1")
	start := time.Now()
	var c capInfo
	waitFor(t, "the new metric shown", 8*time.Second, func() bool {
		c = metricsNow()
		for _, m := range c.Metrics {
			if m.Name == "new.metric" {
				return true
			}
		}
		return false
	})
	t.Logf("new metric shown %v after it was written; series_cap %+v", time.Since(start).Round(10*time.Millisecond), c.Cap)
	if c.Cap.Evicted != 1 || c.Cap.Held != 10 {
		t.Errorf("series_cap %+v, want 1 evicted and 10 held", c.Cap)
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
