package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/console"
	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/input/logsession"
	"github.com/dynometrics/dynometrics/internal/input/otlp"
	"github.com/dynometrics/dynometrics/internal/input/syslog"
	"github.com/dynometrics/dynometrics/internal/librato"
	"github.com/dynometrics/dynometrics/internal/librato/libratotest"
	"github.com/dynometrics/dynometrics/internal/otlpout"
	"github.com/dynometrics/dynometrics/internal/outlet"
	"github.com/dynometrics/dynometrics/internal/promwrite"
	"github.com/dynometrics/dynometrics/internal/selfmetric"
	"github.com/dynometrics/dynometrics/internal/store"
	"github.com/dynometrics/dynometrics/internal/view"
	metrics "github.com/rcrowley/go-metrics"
)

// covered names, for a drop path too costly to trigger here, the test that
// triggers it and checks its statistic: "dir/file_test.go:TestName".
var covered = map[string]string{
	"input.Stats.OverlongLines":              "internal/input/processor_test.go:TestMaxLineBytesBoundary",
	"input.Stats.BrokenStreams":              "internal/input/processor_test.go:TestReadErrors",
	"drain.Stats.QueueFull":                  "internal/input/drain/handler_test.go:TestQueueFull",
	"drain.Stats.AppShare":                   "internal/input/drain/appshare_test.go:TestAppShareOfQueue",
	"drain.Stats.Busy":                       "internal/input/drain/slowloris_test.go:TestBusyWhileReading",
	"drain.Stats.Closing":                    "internal/input/drain/handler_test.go:TestCloseDrains",
	"drain.Stats.DedupEvicted":               "internal/input/drain/handler_test.go:TestDedupBounds",
	"drain.Stats.SharedDups":                 "internal/input/drain/handler_test.go:TestSharedSeen",
	"input.ListenerStats.Saturated":          "internal/input/drain/handler_test.go:TestServer",
	"drain.ServerStats.IdleClosed":           "internal/input/drain/slowloris_test.go:TestIdleKeepAliveClosed",
	"drain.ServerStats.SlowClosed":           "internal/input/drain/slowloris_test.go:TestSlowHeaders",
	"syslog.Stats.Saturated":                 "internal/input/syslog/syslog_test.go:TestMaxConns",
	"syslog.Stats.IdleTimeouts":              "internal/input/syslog/syslog_test.go:TestIdleTimeout",
	"syslog.Stats.SilentClosed":              "internal/input/syslog/reclaim_test.go:TestFirstByteTimeout",
	"syslog.Stats.Reclaimed":                 "internal/input/syslog/reclaim_test.go:TestIdleConnectionsReclaimed",
	"syslog.Stats.HandshakeErrors":           "internal/input/syslog/syslog_test.go:TestTLS",
	"logsession.Stats.SessionErrors":         "internal/input/logsession/logsession_test.go:TestUnauthorized",
	"logsession.Stats.Unauthorized":          "internal/input/logsession/logsession_test.go:TestUnauthorized",
	"logsession.Stats.StreamErrors":          "internal/input/logsession/logsession_test.go:TestStreamFailures",
	"logsession.Stats.IdleTimeouts":          "internal/input/logsession/logsession_test.go:TestStreamFailures",
	"aggregate.Stats.DroppedSeriesLimit":     "internal/aggregate/admit_test.go:TestAdmissionRules",
	"aggregate.Stats.DroppedSourceShare":     "internal/aggregate/admit_test.go:TestBurstDoesNotStarveKnownSeries",
	"aggregate.Stats.DroppedAppShare":        "internal/aggregate/appshare_test.go:TestAppShare",
	"aggregate.Stats.DroppedOpenLimit":       "internal/aggregate/admit_test.go:TestAdmissionRules",
	"aggregate.Stats.DroppedInvalid":         "internal/aggregate/aggregator_test.go:TestInvalid",
	"aggregate.Stats.SketchSaturated":        "internal/aggregate/aggregator_test.go:TestSketchSaturated",
	"librato.Stats.Skipped":                  "internal/librato/harden_test.go:TestOutletFieldRules",
	"promwrite.Stats.Late":                   "internal/promwrite/encode_test.go:TestEncodeCumulative",
	"promwrite.Stats.Unknown":                "internal/promwrite/encode_test.go:TestEncodeCollisionsAndUnknown",
	"promwrite.Stats.Evicted":                "internal/promwrite/encode_test.go:TestTrackerBound",
	"promwrite.Stats.Rejected":               "internal/promwrite/outlet_test.go:TestOutletFaults",
	"console.Stats.WriteErrors":              "internal/console/console_test.go:TestOutletCounts",
	"outlet.Stats.ClosedDrops":               "internal/outlet/base_test.go:TestBaseClosedDrops",
	"outlet.Stats.Queue.Dropped":             "internal/outlet/queue_test.go:TestQueueDropOldestWhenFull",
	"outlet.Stats.Queue.DroppedMeasurements": "internal/outlet/queue_test.go:TestQueueDropOldestWhenFull",
	"outlet.Stats.Queue.DroppedFull":         "internal/outlet/queue_test.go:TestQueueDropOldestWhenFull",
	"outlet.Stats.Queue.DroppedExpired":      "internal/outlet/queue_test.go:TestQueueAgeBound",
	"outlet.Stats.Queue.DroppedPermanent":    "internal/outlet/queue_test.go:TestQueuePermanentDropsOnlyThatBatch",
	"outlet.Stats.Queue.DroppedShutdown":     "internal/outlet/queue_test.go:TestQueueCloseReportsLeftovers",
	"otlp.Stats.Busy":                        "internal/input/otlp/budget_test.go:TestBudget",
	"otlp.Stats.Negative":                    "internal/input/otlp/spec_test.go:TestSpecificationChecks",
	"otlp.Stats.StartAfter":                  "internal/input/otlp/spec_test.go:TestSpecificationChecks",
	"otlp.Stats.Unsafe":                      "internal/input/otlp/spec_test.go:TestSpecificationChecks",
	"view.Stats.DroppedUnsafe":               "internal/view/unsafe_test.go:TestUnsafeNamesNotShown",

	"otlp.Stats.TooLarge":                "internal/input/otlp/handler_test.go:TestAnswers",
	"otlp.Stats.GzipBombs":               "internal/input/otlp/handler_test.go:TestAnswers",
	"otlp.Stats.TooDeep":                 "internal/input/otlp/handler_test.go:TestAnswers",
	"otlp.Stats.TooManyMsgs":             "internal/input/otlp/prescan_test.go:TestManyEmptyRecords",
	"otlp.Stats.QueueFull":               "internal/input/otlp/handler_test.go:TestQueueFull",
	"otlp.Stats.Closing":                 "internal/input/otlp/handler_test.go:TestQueueFull",
	"otlp.Stats.Rejected":                "internal/input/otlp/handler_test.go:TestPartialSuccess",
	"otlp.Stats.TooMany":                 "internal/input/otlp/handler_test.go:TestPartialSuccess",
	"otlp.Stats.TooManyAtt":              "internal/input/otlp/handler_test.go:TestPartialSuccess",
	"otlp.Stats.Invalid":                 "internal/input/otlp/metrics_test.go:TestUnplaceable",
	"otlp.Stats.Unplaceable":             "internal/input/otlp/metrics_test.go:TestUnplaceable",
	"otlp.Stats.CumulativeOutOfOrder":    "internal/input/otlp/metrics_test.go:TestCumulativeSum",
	"otlp.Stats.CumulativeSeriesDropped": "internal/input/otlp/metrics_test.go:TestCumulativeBounds",

	"otlpout.Stats.Rejected":       "internal/otlpout/outlet_test.go:TestFaults",
	"otlpout.Stats.PartialDropped": "internal/otlpout/outlet_test.go:TestFaults",
	"otlpout.Stats.Late":           "internal/otlpout/outlet_test.go:TestCumulativeStateBounds",
	"otlpout.Stats.Evicted":        "internal/otlpout/outlet_test.go:TestCumulativeStateBounds",
	"otlpout.Stats.Unknown":        "internal/otlpout/outlet_test.go:TestUnknownKindSkipped",
	"otlpout.Stats.EncodeErrors":   "internal/otlpout/outlet_test.go:TestEncodeErrorDropsBucket",

	"view.Stats.DroppedSeriesLimit": "internal/view/view_test.go:TestBounds",
	"view.Stats.DroppedConflict":    "internal/view/view_test.go:TestBounds",
	"view.Stats.DroppedPeriod":      "internal/view/view_test.go:TestBounds",
	"view.Stats.DroppedOld":         "internal/view/view_test.go:TestBounds",
	"view.Stats.Busy":               "internal/view/view_test.go:TestBusy",
	"view.Stats.FailedLogins":       "internal/view/login_test.go:TestLoginGuard",
	"view.Stats.Evicted":            "internal/view/cap_test.go:TestCapKeepsNewestSeries",
	"view.Stats.LoginsRefused":      "internal/view/login_test.go:TestLoginGuard",

	"store.Stats.LateStates":       "internal/store/store_test.go:TestHandoverMergeFlushOnce",
	"store.Stats.LateMeasurements": "internal/store/store_test.go:TestHandoverMergeFlushOnce",
	"store.Stats.FramesDuplicate":  "internal/store/store_test.go:TestFrameSeen",
	"store.Stats.BucketsAbandoned": "internal/store/store_test.go:TestDropCounters",
	"store.Stats.OutletRefused":    "internal/store/store_test.go:TestDropCounters",
	"store.Stats.SeriesConflicts":  "internal/store/store_test.go:TestDropCounters",
	"store.Stats.BadBlobs":         "internal/store/store_test.go:TestDropCounters",
	"store.Stats.FallbackExcluded": "internal/store/fallback_test.go:TestFallbackNeverSendsADifferentValue",
	"store.Stats.FeedDropped":      "internal/store/memory_test.go:TestFeedTrimsAndDropsCounted",
	"store.Stats.DataLossSeries":   "internal/store/isolation_test.go:TestDataLossAfterDeadlineCounted",
}

// allStats is every component's Stats type, as the worker publishes it.
var allStats = []statsSource{
	{prefix: "worker.input.", typ: reflect.TypeFor[input.Stats]()},
	{prefix: "worker.drain.", typ: reflect.TypeFor[drain.Stats]()},
	{prefix: "worker.drain.", typ: reflect.TypeFor[drain.ServerStats]()},
	{prefix: "worker.syslog.", typ: reflect.TypeFor[syslog.Stats]()},
	{prefix: "worker.logsession.", typ: reflect.TypeFor[logsession.Stats]()},
	{prefix: "worker.aggregate.", typ: reflect.TypeFor[aggregate.Stats]()},
	{prefix: "worker.otlp.", typ: reflect.TypeFor[otlp.Stats]()},
	{prefix: "worker.outlet.librato.", typ: reflect.TypeFor[librato.Stats]()},
	{prefix: "worker.outlet.remote_write.", typ: reflect.TypeFor[promwrite.Stats]()},
	{prefix: "worker.outlet.otlp.", typ: reflect.TypeFor[otlpout.Stats]()},
	{prefix: "worker.outlet.console.", typ: reflect.TypeFor[console.Stats]()},
	{prefix: "worker.redis.", typ: reflect.TypeFor[store.Stats]()},
	{prefix: "worker.view.", typ: reflect.TypeFor[view.Stats]()},
}

// TestEveryDropPathCounted is issue 13's ninth item: every statistic that
// counts something dropped, refused or cut short (tagged "drop", see
// internal/selfmetric; every field of every Stats must carry a tag) has a
// self-metric; each that a running worker can be made to hit cheaply is
// triggered here and its self-metric must count it; the others name the
// test that does.
func TestEveryDropPathCounted(t *testing.T) {
	fake := libratotest.New(t, libratotest.Options{User: testLUser, Token: testLToken})
	rw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer rw.Close()
	start := time.Now().UTC().Truncate(time.Minute)
	clock := &testClock{t: start.Add(30 * time.Second)}
	cfg := testConfig(fake.URL)
	cfg.Syslog.Addr = freeAddr(t)
	cfg.RemoteWrite.URL = rw.URL
	cfg.LogSession.APIKey, cfg.LogSession.App = "heroku-secret-key", "myapp"
	cfg.LogSession.BaseURL, _ = fakePlatformAPI(t, "")
	url, w, stop := runWorker(t, cfg, outlet.QueueConfig{}, clock)
	drainAddr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/logs")

	// Every drop statistic, with the self-metrics it feeds: of the running
	// worker's components (byField), of every component (mapped).
	drops := func(ss []statsSource) map[string][]string {
		out := map[string][]string{}
		for _, s := range ss {
			ms, err := selfmetric.Metrics(s.prefix, s.typ)
			if err != nil {
				t.Error(err)
			}
			for _, m := range ms {
				for _, f := range m.Fields {
					if m.Drop {
						out[f] = append(out[f], m.Name)
					}
				}
			}
		}
		return out
	}
	byField, mapped := drops(w.statsSources()), drops(allStats)
	for field, names := range byField {
		for _, n := range names {
			if w.reg.Get(n) == nil {
				t.Errorf("%s: self-metric %s not registered", field, n)
			}
		}
	}
	for field, where := range covered {
		file, test, _ := strings.Cut(where, ":")
		src, err := os.ReadFile(filepath.Join("..", file))
		if err != nil || !strings.Contains(string(src), "func "+test+"(") {
			t.Errorf("%s: %s does not exist (%v)", field, where, err)
		}
	}

	// The drop paths a running worker can be made to hit here.
	msg := func(offset time.Duration, body string) string {
		return fmt.Sprintf("<190>1 %s host app web.1 - %s", syslogTime(start.Add(offset)), body)
	}
	raw := func(req string) {
		c, err := net.Dial("tcp", drainAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, req)
		if strings.HasSuffix(req, "short") {
			return // closed mid-body
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
			resp.Body.Close()
		}
	}
	auth := "Authorization: Basic " + basic(testUser, testPass) + "\r\n"
	send := func(id string, h map[string]string, body []byte) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
		req.SetBasicAuth(testUser, testPass)
		req.Header.Set("Logplex-Frame-Id", id)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	base := strings.TrimSuffix(url, "/logs")
	postOTLP := func(path, ctype, body string, auth bool) {
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		if auth {
			req.SetBasicAuth(testUser, testPass)
		}
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	ns := fmt.Sprint(start.Add(time.Second).UnixNano())
	logs := func(body string) string {
		return `{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"` + ns + `","body":` + body + `}]}]}]}`
	}
	metricsJSON := func(m string) string { return `{"resourceMetrics":[{"scopeMetrics":[{"metrics":[` + m + `]}]}]}` }
	triggers := map[string]func(){
		"input.Stats.RejectedLines":   func() { postDrain(t, url, "rej", frame(msg(0, "count#bad=abc"))) },
		"input.Stats.RejectedPairs":   func() {}, // the same line
		"input.Stats.MalformedFrames": func() { postDrain(t, url, "mal", []byte("99999999x <190>1 broken\n")) },
		"input.Stats.BadHeaders":      func() { postDrain(t, url, "hdr", frame("<190>garbage header count#x=1")) },
		"drain.Stats.Duplicates": func() {
			postDrain(t, url, "dup", frame(msg(0, "count#d=1")))
			postDrain(t, url, "dup", frame(msg(0, "count#d=1")))
		},
		"drain.Stats.Unauthorized": func() { raw("POST /logs HTTP/1.1\r\nHost: w\r\nContent-Length: 0\r\n\r\n") },
		"drain.Stats.TooLarge":     func() { raw("POST /logs HTTP/1.1\r\nHost: w\r\n" + auth + "Content-Length: 2000000\r\n\r\n") },
		"drain.Stats.ReadErrors":   func() { raw("POST /logs HTTP/1.1\r\nHost: w\r\n" + auth + "Content-Length: 100\r\n\r\nshort") },
		"drain.Stats.LongFrameIDs": func() { send(strings.Repeat("f", 200), nil, frame(msg(0, "count#l=1"))) },
		"drain.Stats.CountDiffers": func() { send("cnt", map[string]string{"Logplex-Msg-Count": "5"}, frame(msg(0, "count#c=1"))) },
		"drain.ServerStats.HeaderTooLarge": func() {
			raw("POST /logs HTTP/1.1\r\nHost: w\r\nX-Big: " + strings.Repeat("a", drain.MaxHeaderBytes+8<<10) + "\r\n\r\n")
		},
		"drain.ServerStats.BadRequests": func() { raw("GARBAGE\r\n\r\n") },
		"syslog.Stats.ReadErrors": func() {
			c, err := net.Dial("tcp", cfg.Syslog.Addr)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, "12 <190>1 2024")
			time.Sleep(50 * time.Millisecond)
			c.(*net.TCPConn).SetLinger(0) // RST: a reset connection
			c.Close()
		},
		"aggregate.Stats.Late":              func() { postDrain(t, url, "late", frame(msg(-50*time.Second, "count#late=1"))) },
		"aggregate.Stats.DroppedFuture":     func() { postDrain(t, url, "fut", frame(msg(2*time.Hour, "count#fut=1"))) },
		"aggregate.Stats.DroppedOld":        func() { postDrain(t, url, "old", frame(msg(-2*time.Hour, "count#old=1"))) },
		"aggregate.Stats.DroppedConflict":   func() { postDrain(t, url, "conf", frame(msg(0, "count#k=1"), msg(1, "sample#k=1"))) },
		"aggregate.Stats.DroppedOutOfRange": func() { postDrain(t, url, "range", frame(msg(0, "count#hits=1"), msg(1, "count#hits=1e200"))) },
		"librato.Stats.Dropped":             func() { postDrain(t, url, "ss", frame(msg(0, "measure#lat=5ms"), msg(1, "measure#lat=1e64ms"))) },
		"librato.Stats.Collisions":          func() { postDrain(t, url, "coll", frame(msg(0, "count#coll.é=1"), msg(1, "count#coll.ü=1"))) },
		"promwrite.Stats.Collisions":        func() { postDrain(t, url, "pcoll", frame(msg(0, "count#p.q=1"), msg(1, "count#p_q=1"))) },

		// The OTLP receiver, on the drain's port.
		"otlp.Stats.Unauthorized": func() { postOTLP(otlp.LogsPath, "application/json", `{"resourceLogs":[]}`, false) },
		"otlp.Stats.Unsupported":  func() { postOTLP(otlp.LogsPath, "text/plain", "count#x=1", true) },
		"otlp.Stats.Malformed":    func() { postOTLP(otlp.MetricsPath, "application/json", `{"resourceMetrics":[{`, true) },
		"otlp.Stats.NonStringBodies": func() {
			postOTLP(otlp.LogsPath, "application/json", logs(`{"intValue":"1"}`), true)
		},
		"otlp.Stats.Input.RejectedLines": func() {
			postOTLP(otlp.LogsPath, "application/json", logs(`{"stringValue":"count#obad=abc"}`), true)
		},
		"otlp.Stats.Input.RejectedPairs": func() {}, // the same record
		"otlp.Stats.Input.OverlongLines": func() {
			postOTLP(otlp.LogsPath, "application/json", logs(`{"stringValue":"count#olong=1 `+strings.Repeat("x", 17<<10)+`"}`), true)
		},
		"otlp.Stats.NoValue": func() {
			postOTLP(otlp.MetricsPath, "application/json", metricsJSON(`{"name":"nv","gauge":{"dataPoints":[{"timeUnixNano":"`+ns+`"}]}}`), true)
		},
		"otlp.Stats.Summaries": func() {
			postOTLP(otlp.MetricsPath, "application/json",
				metricsJSON(`{"name":"sm","summary":{"dataPoints":[{"timeUnixNano":"`+ns+`","count":"1","sum":1}]}}`), true)
		},
	}
	// Mark the bucket before start flushed, as the flush loop would, so that
	// a line for it is late (nothing is due: the call returns no bucket).
	if bs := w.agg.Flush(clock.Now()); len(bs) != 0 {
		t.Fatalf("unexpected buckets: %v", bs)
	}
	for _, f := range triggers {
		f()
	}
	// The OTLP receiver parses what it accepted in the background.
	waitFor(t, "the OTLP receiver to process its requests", 10*time.Second, func() bool {
		st := w.otlp.Stats()
		return st.Input.OverlongLines > 0 && st.Input.RejectedLines > 0 && st.NonStringBodies > 0 && st.NoValue > 0
	})
	// The bucket ends: the outlets see it.
	clock.Set(start.Add(time.Minute + 2*time.Second))
	waitFor(t, "the bucket at the fake", 10*time.Second, func() bool { _, ok := fake.Find(testPrefix+".hits", "web.1"); return ok })

	for field, names := range byField {
		if _, ok := triggers[field]; ok {
			for _, name := range names {
				if w.reg.Get(name).(metrics.Counter).Count() == 0 {
					t.Errorf("%s (self-metric %s) did not count its trigger", field, name)
				}
			}
			continue
		}
		if _, ok := covered[field]; !ok {
			t.Errorf("%s (self-metrics %v): neither triggered here nor covered by a named test", field, names)
		}
	}
	for field, metric := range mapped {
		if _, ok := triggers[field]; ok {
			continue
		}
		if _, ok := byField[field]; !ok {
			if _, ok := covered[field]; !ok {
				t.Errorf("%s (self-metric %s, not running here): not covered by a named test", field, metric)
			}
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	if got, _ := fake.Find(testPrefix+".hits", "web.1"); got.Value != 1 {
		t.Errorf("hits = %v, want 1: the good value beside the outlier", got.Value)
	}
}
