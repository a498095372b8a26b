package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/outlet"
)

// TestOutletsDoNotFollowRedirectsWithCredentials: every outlet, built as
// the worker builds it from its variables (LIBRATO_TOKEN;
// REMOTE_WRITE_HEADERS and REMOTE_WRITE_USER/PASSWORD;
// OTEL_EXPORTER_OTLP_HEADERS), posts to an endpoint that redirects to
// another host: nothing reaches that host, while each outlet keeps its
// batches and retries (counted in send_failures).
func TestOutletsDoNotFollowRedirectsWithCredentials(t *testing.T) {
	var mu sync.Mutex
	var stolen []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		stolen = append(stolen, r.URL.Path+" "+r.Header.Get("Authorization")+" "+r.Header.Get("X-Api-Key"))
		mu.Unlock()
	}))
	defer other.Close()
	var hits [3]atomic.Int32
	redirect := func(i int, path string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			http.Redirect(w, r, other.URL+path, http.StatusTemporaryRedirect)
		}))
		t.Cleanup(s.Close)
		return s
	}
	start := time.Now().UTC().Truncate(time.Minute)
	clock := &testClock{t: start.Add(30 * time.Second)}
	cfg := testConfig(redirect(0, "/librato").URL)
	cfg.RemoteWrite.URL = redirect(1, "/rw").URL + "/api/v1/write"
	cfg.RemoteWrite.User, cfg.RemoteWrite.Password = "tenant", "rw-secret-pass"
	cfg.RemoteWrite.Headers = "X-Api-Key:rw-secret-key"
	cfg.OTLP.Endpoint, cfg.OTLP.Headers = redirect(2, "/otlp").URL, "X-Api-Key=otlp-secret-key"
	cfg.ShutdownTimeout = time.Second
	url, w, stop := runWorker(t, cfg, outlet.QueueConfig{MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}, clock)
	postDrain(t, url, "r1", frame("<190>1 "+syslogTime(start.Add(time.Second))+" host app web.1 - count#hits=1"))
	clock.Set(start.Add(time.Minute + 2*time.Second))
	waitFor(t, "every outlet to try twice", 10*time.Second, func() bool {
		return hits[0].Load() >= 2 && hits[1].Load() >= 2 && hits[2].Load() >= 2
	})
	for _, name := range []string{"librato", "remote_write", "otlp"} {
		if n := w.reg.Get("worker.outlet." + name + ".send_failures"); n == nil || n.(interface{ Count() int64 }).Count() == 0 {
			t.Errorf("%s: no send failure counted", name)
		}
	}
	_ = stop() // the queues still hold the batches: Close reports them undelivered
	mu.Lock()
	defer mu.Unlock()
	if len(stolen) != 0 {
		t.Fatalf("the other host received: %s", strings.Join(stolen, "; "))
	}
}
