package outlet_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/outlet"
)

// recorder is a receiver that records the headers of every request.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []http.Header
}

func newRecorder(t *testing.T, tls bool, status int) *recorder {
	r := &recorder{}
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.reqs = append(r.reqs, req.Header.Clone())
		r.mu.Unlock()
		w.WriteHeader(status)
	})
	if tls {
		r.Server = httptest.NewTLSServer(h)
	} else {
		r.Server = httptest.NewServer(h)
	}
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) got() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.reqs...)
}

// redirector answers every request with code to target+path.
func redirector(t *testing.T, tls bool, code int, to string) *httptest.Server {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/final" { // the same-origin target
			if r.Header.Get("X-Api-Key") == "" && r.Header.Get("Authorization") == "" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		http.Redirect(w, r, to, code)
	})
	var s *httptest.Server
	if tls {
		s = httptest.NewTLSServer(h)
	} else {
		s = httptest.NewServer(h)
	}
	t.Cleanup(s.Close)
	return s
}

// TestRedirectKeepsCredentials: no credential-carrying header follows a
// redirect to another host (here another port of 127.0.0.1, where Go's
// client would forward Authorization) or from https to plain http; a
// same-origin 307/308 is followed with them. The batch is retried (kept),
// and the error names the redirect without a secret.
func TestRedirectKeepsCredentials(t *testing.T) {
	creds := map[string]outlet.HTTPConfig{
		"custom header (REMOTE_WRITE_HEADERS, OTEL_EXPORTER_OTLP_HEADERS)": {Credentials: map[string]string{"X-Api-Key": "k-secret-1"}},
		"Authorization: Bearer": {Credentials: map[string]string{"Authorization": "Bearer tok-secret-2"}},
		"Authorization: Basic":  {User: "ops", Password: "pw-secret-3"},
	}
	for name, hc := range creds {
		for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
			t.Run(name+"/another host/"+http.StatusText(code), func(t *testing.T) {
				target := newRecorder(t, false, http.StatusNoContent)
				from := redirector(t, false, code, target.URL+"/steal")
				err := send(t, hc, from.URL+"/v1/write", from.Client())
				checkRefused(t, err, target)
			})
		}
		t.Run(name+"/https to plain http", func(t *testing.T) {
			target := newRecorder(t, false, http.StatusNoContent)
			from := redirector(t, true, http.StatusPermanentRedirect, target.URL+"/steal")
			err := send(t, hc, from.URL+"/v1/write", from.Client())
			checkRefused(t, err, target)
		})
		t.Run(name+"/same origin is followed", func(t *testing.T) {
			var from *httptest.Server
			from = redirector(t, false, http.StatusTemporaryRedirect, "/final")
			if err := send(t, hc, from.URL+"/v1/write", from.Client()); err != nil {
				t.Fatalf("a same-origin 307 with its credentials: %v, want accepted", err)
			}
		})
	}
}

func send(t *testing.T, hc outlet.HTTPConfig, url string, client *http.Client) error {
	t.Helper()
	hc.Name, hc.URL, hc.Client, hc.Unit = "test", url, client, "samples"
	s := outlet.NewHTTPSender(hc)
	return s.Send(context.Background(), &outlet.Batch{Body: []byte("data"), N: 3})
}

func checkRefused(t *testing.T, err error, target *recorder) {
	t.Helper()
	if got := target.got(); len(got) != 0 {
		t.Fatalf("the other origin received %d requests, headers %v", len(got), got)
	}
	if !errors.Is(err, outlet.ErrRedirect) || errors.Is(err, outlet.ErrPermanent) || errors.Is(err, outlet.ErrUnauthorized) {
		t.Fatalf("err %v, want a retryable ErrRedirect", err)
	}
	for _, secret := range []string{"k-secret-1", "tok-secret-2", "pw-secret-3"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error holds %s: %v", secret, err)
		}
	}
}

// TestHTTPSenderClasses: the one status classifier.
func TestHTTPSenderClasses(t *testing.T) {
	otlpRetry := func(code int) bool { return code == 429 || code == 502 || code == 503 || code == 504 }
	tests := map[string]struct {
		status     int
		retryAfter string
		retryable  func(int) bool
		want       string // ok, retry, unauthorized, permanent
		delay      time.Duration
	}{
		"200":                      {status: 200, want: "ok"},
		"204":                      {status: 204, want: "ok"},
		"400":                      {status: 400, want: "permanent"},
		"404":                      {status: 404, want: "permanent"},
		"401":                      {status: 401, want: "unauthorized"},
		"403":                      {status: 403, want: "unauthorized"},
		"429 with Retry-After":     {status: 429, retryAfter: "7", want: "retry", delay: 7 * time.Second},
		"503 with Retry-After":     {status: 503, retryAfter: "2", want: "retry", delay: 2 * time.Second},
		"500":                      {status: 500, want: "retry"},
		"500, OTLP's rules":        {status: 500, retryable: otlpRetry, want: "permanent"},
		"502, OTLP's rules":        {status: 502, retryable: otlpRetry, want: "retry"},
		"429, OTLP's Retry-After":  {status: 429, retryAfter: "3", retryable: otlpRetry, want: "retry", delay: 3 * time.Second},
		"401 ignores Retryable":    {status: 401, retryable: func(int) bool { return true }, want: "unauthorized"},
		"304 (unresolved 3xx)":     {status: 304, want: "retry"},
		"400 with Retry-After too": {status: 400, retryAfter: "5", want: "permanent"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
				if tc.status != 304 && tc.status != 204 {
					w.Write([]byte("echo k-secret-9 " + strings.Repeat("x", 2*outlet.MaxErrorBody)))
				}
			}))
			defer srv.Close()
			s := outlet.NewHTTPSender(outlet.HTTPConfig{Name: "test", URL: srv.URL + "/w?key=q-secret", Retryable: tc.retryable,
				Credentials: map[string]string{"X-Api-Key": "k-secret-9"}})
			err := s.Send(context.Background(), &outlet.Batch{Body: []byte("x"), N: 1})
			var got string
			switch {
			case err == nil:
				got = "ok"
			case errors.Is(err, outlet.ErrUnauthorized):
				got = "unauthorized"
			case errors.Is(err, outlet.ErrPermanent):
				got = "permanent"
			default:
				got = "retry"
			}
			if got != tc.want {
				t.Fatalf("HTTP %d: %s (%v), want %s", tc.status, got, err, tc.want)
			}
			var ra *outlet.RetryAfterError
			if errors.As(err, &ra) != (tc.delay > 0) || tc.delay > 0 && ra.Delay != tc.delay {
				t.Fatalf("HTTP %d: Retry-After %v, want %v", tc.status, ra, tc.delay)
			}
			if err == nil {
				return
			}
			if msg := err.Error(); strings.Contains(msg, "k-secret-9") || strings.Contains(msg, "q-secret") ||
				len(msg) > outlet.MaxErrorBody+200 || !strings.HasPrefix(msg, "test: POST "+srv.URL+"/w: 1 measurements: HTTP ") {
				t.Fatalf("error %q: leaks, is unbounded, or lacks the endpoint", msg)
			}
			wantRejected := map[string]int64{"permanent": 1}[tc.want]
			wantRetried := map[string]int64{"retry": 1}[tc.want]
			if s.Rejected() != wantRejected || s.Retried() != wantRetried {
				t.Fatalf("rejected %d retried %d, want %d %d", s.Rejected(), s.Retried(), wantRejected, wantRetried)
			}
		})
	}
}

// TestHTTPSenderTransport: a transport error does not repeat the endpoint
// (its query may hold a key); a request that cannot be built is permanent;
// headers go out.
func TestHTTPSenderTransport(t *testing.T) {
	srv := newRecorder(t, false, http.StatusNoContent)
	hc := outlet.HTTPConfig{Name: "test", URL: srv.URL + "/v1?key=secret-key", Credentials: map[string]string{"X-Api-Key": "k1-secret"},
		Header: http.Header{"Content-Type": {"application/x-protobuf"}}}
	if err := outlet.NewHTTPSender(hc).Send(context.Background(), &outlet.Batch{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if h := srv.got()[0]; h.Get("X-Api-Key") != "k1-secret" || h.Get("Content-Type") != "application/x-protobuf" {
		t.Fatalf("headers sent: %v", h)
	}
	srv.Close()
	err := outlet.NewHTTPSender(hc).Send(context.Background(), &outlet.Batch{})
	if err == nil || strings.Contains(err.Error(), "secret-key") || errors.Is(err, outlet.ErrPermanent) {
		t.Fatalf("closed server: %v, want a retryable error without the URL's query", err)
	}
	hc.URL = "http://[::1"
	if err := outlet.NewHTTPSender(hc).Send(context.Background(), &outlet.Batch{}); !errors.Is(err, outlet.ErrPermanent) {
		t.Fatalf("bad URL: %v, want ErrPermanent", err)
	}
}
