package drain_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/dynometrics/dynometrics/internal/appauth"
	"github.com/dynometrics/dynometrics/internal/appstats"
	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// TestAppShareOfQueue: one app flooding the drain while the parser is held
// fills only its share of the queue (503 with Retry-After to it alone);
// another app's POSTs still get in, up to their own share; nothing
// accepted is lost; refusals are counted overall and per app.
func TestAppShareOfQueue(t *testing.T) {
	keys, err := appauth.New([]string{"0123456789abcdef0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	perApp := map[string]int{}
	stats := appstats.New(nil)
	p, err := input.NewProcessor(input.SinkFunc(func(ms []metric.Measurement) {
		once.Do(func() { close(started); <-release })
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ms {
			perApp[m.App]++
		}
	}), input.Config{Apps: stats})
	if err != nil {
		t.Fatal(err)
	}
	h, err := drain.New(p, drain.Config{Apps: keys, AppStats: stats, QueueDepth: 8, Workers: 1, DedupSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	post := func(app string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, drain.LogsPath, strings.NewReader(frame("<190>1 2024-05-01T12:00:00+00:00 host app web.1 - count#n=1")))
		r.SetBasicAuth(app, keys.Token(app))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	// flood's first body holds the parser; then flood queues until, the queue half
	// full (4), it holds its share of 8/(1+1) bodies (4 queued + 1 parsing).
	if w := post("flood"); w.Code != http.StatusNoContent {
		t.Fatalf("a's first POST: %d", w.Code)
	}
	<-started
	accepted := map[string]int{"flood": 1}
	for _, app := range []string{"flood", "flood", "flood", "flood", "flood", "flood", "flood", "steady", "steady", "steady", "steady"} {
		switch w := post(app); w.Code {
		case http.StatusNoContent:
			accepted[app]++
		case http.StatusServiceUnavailable:
			if w.Header().Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
		default:
			t.Fatalf("POST of %s: %d", app, w.Code)
		}
	}
	// steady, with nothing queued while flood holds its part, may hold 8/(2+1) = 2.
	if accepted["flood"] != 5 || accepted["steady"] != 2 {
		t.Errorf("accepted %v, want flood 5 (its share), steady 2 (its share beside flood)", accepted)
	}
	st := h.Stats()
	if st.AppShare != 3+2 || st.QueueFull != 0 || st.Queued != 6 {
		t.Errorf("stats %+v: want AppShare 5, QueueFull 0, Queued 6", st)
	}
	if a, b := stats.For("flood").Refused.Load(), stats.For("steady").Refused.Load(); a != 3 || b != 2 {
		t.Errorf("refused per app: flood %d, steady %d; want 3, 2", a, b)
	}
	close(release)
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if perApp["flood"] != 5 || perApp["steady"] != 2 {
		t.Errorf("measurements per app %v, want every accepted body's: flood 5, steady 2", perApp)
	}
	if a, b := stats.For("flood").Lines.Load(), stats.For("steady").Lines.Load(); a != 5 || b != 2 {
		t.Errorf("lines per app: flood %d, steady %d; want 5, 2", a, b)
	}
}
