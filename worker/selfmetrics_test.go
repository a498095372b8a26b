package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
	metrics "github.com/rcrowley/go-metrics"
)

// registeredNames builds a worker from cfg (not started) and returns the
// sorted names of its self-metrics, each followed by its kind (counter or
// gauge).
func registeredNames(t *testing.T, cfg Config, opt options) []string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	opt.stdout, opt.logger, opt.drainListener = io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)), l
	w, err := newWorker(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if w.shared != nil {
			_ = w.shared.st.Close()
		}
	})
	var names []string
	w.reg.Each(func(name string, m any) {
		kind := "?"
		switch m.(type) {
		case metrics.Counter:
			kind = "counter"
		case metrics.Gauge:
			kind = "gauge"
		}
		names = append(names, name+" "+kind)
	})
	slices.Sort(names)
	return names
}

// added are the self-metrics registered since testdata/selfmetrics.txt was
// captured, with why.
var added = map[string]string{
	"worker.outlet.librato.closed_drops counter": "Librato shares the outlet skeleton (internal/outlet.Base), which counts buckets written after Close",
}

// TestSelfMetricNames: the names of the worker's self-metrics, with every
// component configured, are exactly those users and docs rely on
// (testdata/selfmetrics.txt, captured before the registrations were
// declared on the Stats fields, plus added); the console outlet's come on top.
func TestSelfMetricNames(t *testing.T) {
	rw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer rw.Close()
	cfg := testConfig(rw.URL)
	cfg.Syslog.Addr = freeAddr(t)
	cfg.RemoteWrite.URL = rw.URL
	cfg.OTLP.Endpoint = rw.URL
	cfg.LogSession.APIKey, cfg.LogSession.App = "heroku-secret-key", "myapp"
	cfg.LogSession.BaseURL, _ = fakePlatformAPI(t, "")
	cfg.Redis.URL, cfg.Redis.Handover, cfg.Redis.FallbackAfter, cfg.Redis.Partitions = redistest.Start(t).URL, time.Second, time.Minute, 4
	cfg.View.Password = "view-secret"
	got := registeredNames(t, cfg, options{})

	want, err := os.ReadFile(filepath.Join("testdata", "selfmetrics.txt"))
	if err != nil {
		t.Fatal(err)
	}
	wantNames := strings.Split(strings.TrimSpace(string(want)), "\n")
	for n := range added {
		wantNames = append(wantNames, n)
	}
	slices.Sort(wantNames)
	if g, w := strings.Join(got, "\n"), strings.Join(wantNames, "\n"); g != w {
		t.Errorf("self-metric names differ from testdata/selfmetrics.txt:\n%s", lineDiff(w, g))
	}

	console := registeredNames(t, Config{Drain: drain.Env{User: testUser, Password: testPass}, Buckets: aggregate.Env{Resolution: time.Minute}}, options{})
	if !slices.Contains(console, "worker.outlet.console.write_errors counter") {
		t.Errorf("the console outlet's worker.outlet.console.write_errors is not registered: %v", console)
	}
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out []string
	for _, s := range w {
		if !slices.Contains(g, s) {
			out = append(out, "- "+s)
		}
	}
	for _, s := range g {
		if !slices.Contains(w, s) {
			out = append(out, "+ "+s)
		}
	}
	return strings.Join(out, "\n")
}
