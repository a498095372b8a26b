package main

import (
	"fmt"
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
	"worker.outlet.librato.push_waits counter":      "issue 18: flushes that waited for room in a full outlet queue (backpressure with REDIS_URL)",
	"worker.outlet.otlp.push_waits counter":         "issue 18: as for Librato",
	"worker.outlet.remote_write.push_waits counter": "issue 18: as for Librato",
	"worker.outlet.librato.closed_drops counter":    "Librato shares the outlet skeleton (internal/outlet.Base), which counts buckets written after Close",
	"worker.http.bytes_in_flight gauge":             "issue 20: the one budget of request bytes being read and decoded on PORT",
	"worker.otlp.busy counter":                      "issue 20: OTLP requests answered 503 because that budget was spent",
	"worker.otlp.rejected_negative counter":         "issue 20: negative values on monotonic delta sums, rejected",
	"worker.otlp.rejected_start_after_time counter": "issue 20: points starting after their own time, rejected",
	"worker.otlp.rejected_unsafe_names counter":     "issue 20: names or sources with control or bidirectional characters, rejected",
	"worker.view.evicted counter":                   "issue 20: least recently updated series evicted to show new ones",
	"worker.view.failed_logins counter":             "issue 20: wrong view credentials",
	"worker.view.logins_refused counter":            "issue 20: view logins refused unchecked after repeated failures",
	"worker.redis.data_loss_series counter":         "issue 17: series of buckets already due when Redis lost its data (possibly lost)",
	"worker.redis.data_losses counter":              "issue 17: times Redis was found to have lost its data",
	"worker.redis.fallback_excluded counter":        "issue 17: series left out of a merged bucket because a fallback had sent them",
	"worker.redis.fallback_late counter":            "issue 17: buckets a fallback sent after Redis had closed them",
	"worker.redis.feed_dropped counter":             "issue 17: merged buckets the feed could not take (viewers miss them)",
	"worker.redis.feed_trimmed counter":             "issue 17: feed entries removed by its cap",
	"worker.redis.fenced counter":                   "issue 17: flush-side writes refused to a stale lease holder",
	"worker.redis.flush_waits counter":              "issue 17: flush rounds held back for a worker whose partials Redis refused",
	"worker.redis.leases_lost counter":              "issue 17: leases found lapsed or taken",
	"worker.redis.leases_released counter":          "issue 18: leases given up to balance the partitions over the live workers",
	"worker.redis.live_workers gauge":               "issue 18: live workers (heartbeats) this worker last read",
	"worker.redis.frames_repaired counter":          "issue 17: Frame-Ids written to Redis again after it lost its data",
	"worker.redis.frames_taken_twice counter":       "issue 17: drain bodies another worker took again between a data loss and the Frame-Id repair",
	"worker.redis.flush_ms counter":                 "issue 18: time spent flushing (partition, bucket)s, for the capacity harness",
	"worker.redis.repaired_series counter":          "issue 17: open series written again after a data loss",
	"worker.redis.resends counter":                  "issue 17: deliveries resent after an unknown outcome (identical values)",
	"worker.redis.totals_pruned counter":            "issue 17: running totals of idle series pruned",
	"worker.redis.withdrawn counter":                "issue 17: deliveries withdrawn unsent when the lease moved",
	"worker.redis.errors.auth counter":              "issue 17: Redis steps that failed, by reason (auth)",
	"worker.redis.errors.loading counter":           "issue 17: Redis steps that failed, by reason (loading)",
	"worker.redis.errors.oom counter":               "issue 17: Redis steps that failed, by reason (oom)",
	"worker.redis.errors.other counter":             "issue 17: Redis steps that failed, by reason (other)",
	"worker.redis.errors.readonly counter":          "issue 17: Redis steps that failed, by reason (readonly)",
	"worker.redis.errors.timeout counter":           "issue 17: Redis steps that failed, by reason (timeout)",
	"worker.redis.errors.unreachable counter":       "issue 17: Redis steps that failed, by reason (unreachable)",
	"worker.redis.errors.wrongtype counter":         "issue 17: Redis steps that failed, by reason (wrongtype)",
	"worker.aggregate.dropped.app_share counter":    "issue 19: new series refused beyond their app's share of a contested bucket (multi-app mode)",
	"worker.drain.app_share counter":                "issue 19: drain POSTs answered 503 beyond their app's share of a queue at least half full (multi-app mode)",
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

	checkSelfMetricsDoc(t, append(got, "worker.outlet.console.write_errors counter"))

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

const (
	selfDocPath  = "../docs/self-metrics.md"
	selfDocBegin = "<!-- BEGIN self-metrics: generated by `go test ./worker -run TestSelfMetricNames -update-doc` -->"
	selfDocEnd   = "<!-- END self-metrics -->"
)

// checkSelfMetricsDoc keeps docs/self-metrics.md's catalogue the set of
// names the worker registers (with -update-doc it rewrites it): a counter
// added to a Stats struct is documented, or this fails.
func checkSelfMetricsDoc(t *testing.T, names []string) {
	t.Helper()
	slices.Sort(names)
	var b strings.Builder
	b.WriteString(selfDocBegin + "\n\n| Self-metric | Printed as |\n|---|---|\n")
	for _, n := range names {
		name, kind, _ := strings.Cut(n, " ")
		form := "count# per interval"
		if kind == "gauge" {
			form = "sample# (current value)"
		}
		fmt.Fprintf(&b, "| `%s` | %s |\n", name, form)
	}
	b.WriteString("\n" + selfDocEnd)
	doc, err := os.ReadFile(selfDocPath)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(doc), selfDocBegin)
	_, after, ok2 := strings.Cut(rest, selfDocEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the generated catalogue's markers %q … %q", selfDocPath, selfDocBegin, selfDocEnd)
	}
	want := before + b.String() + after
	if want == string(doc) {
		return
	}
	if *updateDoc {
		if err := os.WriteFile(selfDocPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s's catalogue is not the registered self-metrics: run go test ./worker -run TestSelfMetricNames -update-doc", selfDocPath)
}
