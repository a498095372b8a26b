package otlp

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/input/budget"
)

// stalled is a body that yields its bytes, then blocks until released.
type stalled struct {
	data    io.Reader
	release chan struct{}
}

func (s *stalled) Read(p []byte) (int, error) {
	n, err := s.data.Read(p)
	if err == io.EOF {
		<-s.release
	}
	if n > 0 {
		return n, nil
	}
	return 0, io.ErrUnexpectedEOF
}

// TestBudget: a request that declares 4 MiB and sends 10 bytes takes 10
// bytes of the budget, not 4 MiB; a request whose raw, inflated or decoded
// bytes do not fit gets 503 with Retry-After, is counted in Stats.Busy, and
// gives back what it took.
func TestBudget(t *testing.T) {
	b := budget.New(64 << 10)
	r, c := newTestReceiver(t, func(cfg *Config) { cfg.Budget = b })

	release := make(chan struct{})
	done := make(chan int)
	go func() {
		req := httptest.NewRequest(http.MethodPost, MetricsPath, &stalled{data: strings.NewReader("0123456789"), release: release})
		req.ContentLength = 4 << 20
		req.Header.Set("Authorization", basicAuth(testUser, testPass))
		req.Header.Set("Content-Type", "application/x-protobuf")
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		done <- w.Code
	}()
	waitUntil(t, func() bool { return b.Stats().Used == 10 })

	small := marshal(t, logsRequest("web.1", testNow, "count#req=1"))
	if w := post(r, LogsPath, "application/x-protobuf", "", small); w.Code != http.StatusOK {
		t.Fatalf("small request beside the stalled one: %d %s", w.Code, w.Body)
	}
	big := marshal(t, logsRequest("web.1", testNow, strings.Repeat("count#req=1 ", 8000)))
	for name, tc := range map[string]struct {
		body []byte
		enc  string
	}{
		"raw":      {big, ""},
		"inflated": {gz(t, big), "gzip"},
	} {
		w := post(r, LogsPath, "application/x-protobuf", tc.enc, tc.body)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
			t.Errorf("%s: %d Retry-After %q, want 503 and 1", name, w.Code, w.Header().Get("Retry-After"))
		}
	}
	many := marshal(t, logsRequest("web.1", testNow, strings.Repeat("x", 10)))
	for range 400 { // 400 records × ~3 messages × 160 bytes estimated, past 64 KiB
		many = append(many, marshal(t, logsRequest("web.1", testNow, "x"))...)
	}
	if w := post(r, LogsPath, "application/x-protobuf", "", many); w.Code != http.StatusServiceUnavailable {
		t.Errorf("decoded estimate past the budget: %d, want 503", w.Code)
	}
	close(release)
	<-done
	if st := r.Stats(); st.Busy != 3 {
		t.Errorf("Busy %d, want 3", st.Busy)
	}
	if u := b.Stats().Used; u != 0 {
		t.Errorf("%d bytes still taken after every request ended", u)
	}
	_ = r.Close(t.Context())
	if n := len(c.all()); n != 1 {
		t.Errorf("%d measurements, want the small request's 1", n)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
