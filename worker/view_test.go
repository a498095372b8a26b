package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/input/logsession"
	"github.com/dynometrics/dynometrics/internal/input/otlp"
	"github.com/dynometrics/dynometrics/internal/librato"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/view"
)

func viewConfig() Config {
	return Config{
		Drain:           drain.Env{Port: "8080", User: "drain", Password: "drain-secret"},
		Buckets:         aggregate.Env{Resolution: time.Minute, Grace: 10 * time.Second},
		Librato:         librato.Env{API: "metrics", URL: "https://metrics-api.librato.com"},
		View:            view.Env{Window: 6 * time.Hour, MaxPoints: 720, MaxSeries: 2000},
		LogSession:      logsession.Env{BaseURL: "https://api.heroku.com"},
		Fir:             otlp.Env{SourceAttributes: "heroku.dyno.name", DynoNames: "full"},
		ShutdownTimeout: 25 * time.Second,
	}
}

// TestViewOnPort: with VIEW_PASSWORD the view is served at / on PORT behind
// its own Basic auth; the drain's credentials do not open it, the view's do
// not open the drain, and /health stays open. Without VIEW_PASSWORD PORT
// serves no view.
func TestViewOnPort(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := viewConfig()
	cfg.View.User, cfg.View.Password = "ops", "view-secret"
	w, err := newWorker(cfg, options{stdout: io.Discard, logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if len(w.viewers) != 2 || w.viewServer != nil {
		t.Fatalf("%d viewers, own server %v: want the view beside the interval check, no -view server", len(w.viewers), w.viewServer)
	}
	w.write([]*aggregate.Bucket{{Start: time.Unix(1764583200, 0).UTC(), Period: time.Minute, Series: []aggregate.Series{
		{Name: "http.requests", Source: "web.1", Kind: metric.Counter, Count: 2, Sum: 5},
		{Name: "http.requests", Source: "web.2", Kind: metric.Counter, Count: 1, Sum: 3},
	}}})

	type req struct {
		method, path, user, pass string
		status                   int
	}
	for name, r := range map[string]req{
		"page without credentials":     {"GET", "/", "", "", 401},
		"page with the drain's":        {"GET", "/", "drain", "drain-secret", 401},
		"page with the view's":         {"GET", "/", "ops", "view-secret", 200},
		"api with the view's":          {"GET", "/api/series?name=http.requests", "ops", "view-secret", 200},
		"api with the drain's":         {"GET", "/api/metrics", "drain", "drain-secret", 401},
		"drain with the view's":        {"POST", "/logs", "ops", "view-secret", 401},
		"health without credentials":   {"GET", "/health", "", "", 200},
		"unknown path with the view's": {"GET", "/nope", "ops", "view-secret", 404},
	} {
		t.Run(name, func(t *testing.T) {
			hr := httptest.NewRequest(r.method, r.path, strings.NewReader(""))
			if r.user != "" {
				hr.SetBasicAuth(r.user, r.pass)
			}
			rec := httptest.NewRecorder()
			w.mux.ServeHTTP(rec, hr)
			if rec.Code != r.status {
				t.Fatalf("%s %s: %d, want %d (%s)", r.method, r.path, rec.Code, r.status, rec.Body)
			}
			if r.path == "/api/series?name=http.requests" {
				var a struct {
					Series []struct {
						Source string
						Points [][2]float64
					}
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
					t.Fatal(err)
				}
				want := map[string]float64{"*": 8, "web.1": 5, "web.2": 3}
				for _, s := range a.Series {
					if len(s.Points) != 1 || s.Points[0] != [2]float64{1764583200, want[s.Source]} {
						t.Errorf("%s: %v, want [[1764583200 %v]]", s.Source, s.Points, want[s.Source])
					}
				}
				if len(a.Series) != 3 {
					t.Errorf("%d lines, want 3", len(a.Series))
				}
			}
		})
	}

	w2, err := newWorker(viewConfig(), options{stdout: io.Discard, logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	w2.mux.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusNotFound || len(w2.viewers) != 1 {
		t.Errorf("without VIEW_PASSWORD: GET / = %d with %d viewers, want 404 and only the interval check", rec.Code, len(w2.viewers))
	}
}

func TestViewConfigErrors(t *testing.T) {
	tests := map[string]struct {
		change func(*Config)
		want   string
	}{
		"valid":                 {func(c *Config) { c.View.User, c.View.Password = "ops", "view-secret" }, ""},
		"zero points":           {func(c *Config) { c.View.MaxPoints = 0 }, `VIEW_MAX_POINTS="0": not positive`},
		"zero series":           {func(c *Config) { c.View.MaxSeries = 0 }, `VIEW_MAX_SERIES="0": not positive`},
		"zero window":           {func(c *Config) { c.View.Window = 0 }, `VIEW_WINDOW="0s": shorter than METRICS_RESOLUTION`},
		"user without password": {func(c *Config) { c.View.User = "ops" }, "VIEW_USER is set but VIEW_PASSWORD is not"},
		"password without user": {func(c *Config) { c.View.Password = "view-secret" }, "VIEW_PASSWORD is set but VIEW_USER is not"},
		"the drain's password":  {func(c *Config) { c.View.User, c.View.Password = "ops", "drain-secret" }, "VIEW_PASSWORD equals DRAIN_PASSWORD"},
		"window < resolution":   {func(c *Config) { c.View.Window = time.Second }, `VIEW_WINDOW="1s": shorter than METRICS_RESOLUTION=1m0s`},
		"negative points":       {func(c *Config) { c.View.MaxPoints = -1 }, `VIEW_MAX_POINTS="-1": not positive`},
		"negative series":       {func(c *Config) { c.View.MaxSeries = -5 }, `VIEW_MAX_SERIES="-5": not positive`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := viewConfig()
			tc.change(&c)
			err := c.validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error leaks a secret: %v", err)
			}
		})
	}
}

// TestViewFlag: -view serves on its own address in -stdin mode and prints
// the URL; an address it cannot listen on fails naming -view.
func TestViewFlag(t *testing.T) {
	t.Setenv("EMITTER_INTERVAL", "1h")
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"-stdin", "-view", "127.0.0.1:0"}, strings.NewReader(""), &stdout, &stderr)
	if code != 0 || !liveViewURL.MatchString(stderr.String()) || !strings.Contains(stderr.String(), "url=http://127.0.0.1:") {
		t.Errorf("exit %d, stderr lacks the view's URL:\n%s", code, stderr.String())
	}
	stderr.Reset()
	code = realMain([]string{"-stdin", "-view", "256.1.1.1:80"}, strings.NewReader(""), &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "view: listen on -view 256.1.1.1:80") {
		t.Errorf("exit %d, stderr lacks the -view error:\n%s", code, stderr.String())
	}
}
