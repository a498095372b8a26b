package view

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestClientAddr: X-Forwarded-For's last entry is trusted only from a
// loopback or private peer (a proxy such as Heroku's router); earlier
// entries never.
func TestClientAddr(t *testing.T) {
	for name, tc := range map[string]struct {
		remote string
		xff    []string
		want   string
	}{
		"public peer, no header":          {"198.51.100.7:5000", nil, "198.51.100.7"},
		"public peer ignores the header":  {"198.51.100.7:5000", []string{"203.0.113.9"}, "198.51.100.7"},
		"router: last entry":              {"10.1.2.3:5000", []string{"1.1.1.1, 2.2.2.2, 203.0.113.9"}, "203.0.113.9"},
		"router: last of several headers": {"10.1.2.3:5000", []string{"1.1.1.1", "203.0.113.9"}, "203.0.113.9"},
		"loopback proxy":                  {"127.0.0.1:5000", []string{"203.0.113.9"}, "203.0.113.9"},
		"router, no header":               {"10.1.2.3:5000", nil, "10.1.2.3"},
		"router, empty last entry":        {"10.1.2.3:5000", []string{"203.0.113.9, "}, "10.1.2.3"},
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddr(r); got != tc.want {
				t.Errorf("clientAddr = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestLoginGuard: FreeLoginFailures wrong passwords are answered 401; then
// the client is refused 429 with Retry-After, unchecked, for a lockout that
// doubles; another client is not affected; the right password after the
// lockout clears the failures; failures are counted and logged once a
// minute.
func TestLoginGuard(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	var logs bytes.Buffer
	h := newHistory(t, Config{Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	hd := h.Handler(HandlerConfig{User: "ops", Password: "s3cret"})
	try := func(client, pass string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/api/metrics", nil)
		r.RemoteAddr = "10.0.0.1:4000"
		r.Header.Set("X-Forwarded-For", "spoofed-"+pass+", "+client)
		r.SetBasicAuth("ops", pass)
		w := httptest.NewRecorder()
		hd.ServeHTTP(w, r)
		return w
	}
	for i := range FreeLoginFailures {
		if w := try("203.0.113.9", fmt.Sprint("guess", i)); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, w.Code)
		}
	}
	if w := try("203.0.113.9", "guess5"); w.Code != http.StatusUnauthorized {
		t.Fatalf("failure 6: %d, want 401 (it starts the lockout)", w.Code)
	}
	w := try("203.0.113.9", "s3cret")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("during the lockout: %d Retry-After %q, want 429 and 1", w.Code, w.Header().Get("Retry-After"))
	}
	if w := try("198.51.100.1", "s3cret"); w.Code != http.StatusOK {
		t.Fatalf("another client: %d, want 200", w.Code)
	}
	now = now.Add(time.Second)
	try("203.0.113.9", "guess6") // 7th failure: 2 s
	if w := try("203.0.113.9", "guess7"); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("after the 7th failure: %d Retry-After %q, want 429 and 2", w.Code, w.Header().Get("Retry-After"))
	}
	now = now.Add(2 * time.Second)
	if w := try("203.0.113.9", "s3cret"); w.Code != http.StatusOK {
		t.Fatalf("the right password after the lockout: %d, want 200", w.Code)
	}
	if w := try("203.0.113.9", "guess8"); w.Code != http.StatusUnauthorized {
		t.Fatalf("after a success the count starts again: %d, want 401", w.Code)
	}
	st := h.Stats()
	if st.FailedLogins != 8 || st.LoginsRefused != 2 {
		t.Errorf("FailedLogins %d, LoginsRefused %d; want 8 and 2", st.FailedLogins, st.LoginsRefused)
	}
	if n := strings.Count(logs.String(), "failed login"); n != 1 || strings.Contains(logs.String(), "guess") {
		t.Errorf("%d log lines (want 1, without the passwords):\n%s", n, logs.String())
	}
}

// TestLoginClientsBounded: the remembered clients stay within
// MaxLoginClients however many addresses fail.
func TestLoginClientsBounded(t *testing.T) {
	h := newHistory(t, Config{})
	g := newLoginGuard(h, "ops", "s3cret")
	now := time.Now()
	for i := range MaxLoginClients + 500 {
		g.fail(fmt.Sprintf("2001:db8::%x", i), now)
	}
	if n := g.clients.Len(); n != MaxLoginClients {
		t.Errorf("%d clients; want %d", n, MaxLoginClients)
	}
	if g.clients.Peek("2001:db8::0") != nil {
		t.Error("the least recent client is still remembered")
	}
}
