// Package promtest starts a real Prometheus server for tests, with its
// remote-write receiver enabled, and queries it over the HTTP API.
//
//	srv := promtest.Start(t)           // skips when no prometheus binary (fails when CI=true)
//	// … remote-write to srv.WriteURL (http://127.0.0.1:PORT/api/v1/write) …
//	got := srv.Query(t, `up_total{source="web.1"}`, at)
//	// got[0].Labels["source"] == "web.1", got[0].Value == 3
//
// The binary is $PROMETHEUS_BIN, else "prometheus" on $PATH, else
// /usr/bin/prometheus (Debian: apt-get install prometheus). Prometheus' TSDB
// only accepts samples near its newest one (about an hour): write samples with
// timestamps close to now.
package promtest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/testproc"
)

// Bounds of the harness.
const (
	// ReadyTimeout is how long Start waits for /-/ready.
	ReadyTimeout = 60 * time.Second
	// StopTimeout is how long Cleanup waits after SIGTERM before SIGKILL.
	StopTimeout = 10 * time.Second
	// MaxLog is how much of Prometheus' output is kept and shown when a test fails.
	MaxLog = 64 << 10
	// startAttempts is how often Start retries when the free port it picked
	// was taken in between.
	startAttempts = 3
)

// minimalConfig scrapes nothing: the server only receives remote writes.
const minimalConfig = "global:\n  scrape_interval: 1h\n  evaluation_interval: 1h\n"

// Server is a running Prometheus. Safe for concurrent use.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234.
	URL string
	// WriteURL is the remote-write receiver: URL + "/api/v1/write".
	WriteURL string

	proc *testproc.Proc
}

// Sample is one element of an instant-vector query result.
type Sample struct {
	Labels map[string]string // including __name__ when the query keeps it
	Value  float64
	Time   time.Time
}

// String formats s like PromQL output: {a="b", c="d"} => 1.5.
func (s Sample) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(s.Labels)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", k, s.Labels[k])
	}
	b.WriteString("} => ")
	b.WriteString(strconv.FormatFloat(s.Value, 'f', -1, 64))
	return b.String()
}

// Start runs Prometheus on a free 127.0.0.1 port with a fresh TSDB in
// t.TempDir() and the remote-write receiver on, waits until it is ready, and
// stops it in t.Cleanup. Without a binary it skips the test, unless the
// environment says CI=true, where it fails it.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := testproc.Find("PROMETHEUS_BIN", "prometheus")
	if bin == "" {
		testproc.Missing(t, "promtest: no prometheus binary (apt-get install prometheus, or set PROMETHEUS_BIN)")
		return nil
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(minimalConfig), 0o600); err != nil {
		t.Fatalf("promtest: write config: %v", err)
	}
	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		s, err := start(bin, cfgPath, filepath.Join(dir, fmt.Sprintf("data%d", attempt)))
		if err == nil {
			t.Cleanup(func() {
				if err := s.stop(); err != nil {
					t.Errorf("promtest: stop: %v", err)
				}
				if t.Failed() {
					t.Logf("promtest: prometheus output:\n%s", s.proc.Log.String())
				}
			})
			return s
		}
		lastErr = err
	}
	t.Fatalf("promtest: start %s: %v", bin, lastErr)
	return nil
}

func start(bin, cfgPath, dataDir string) (*Server, error) {
	port, err := testproc.FreePort()
	if err != nil {
		return nil, fmt.Errorf("pick a port: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := &Server{URL: "http://" + addr, WriteURL: "http://" + addr + "/api/v1/write"}
	s.proc, err = testproc.Start(exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+dataDir,
		"--web.listen-address="+addr,
		"--web.enable-remote-write-receiver",
		"--log.level=warn",
	), MaxLog)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: time.Second}
	ready := func() bool {
		resp, err := client.Get(s.URL + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	if err := s.proc.WaitReady(ready, 50*time.Millisecond, ReadyTimeout); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) stop() error { return s.proc.Stop(os.Interrupt, StopTimeout) }

// queryResponse is the /api/v1/query answer.
type queryResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"` // []vectorElem, or a scalar's [t, "v"]
	} `json:"data"`
}

type vectorElem struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"` // [unix seconds (number), "value" (string)]
}

// Query evaluates an instant PromQL query at the given time and returns the
// vector result sorted by labels; a scalar result comes back as one Sample
// without labels. Any error fails the test.
func (s *Server) Query(t testing.TB, promql string, at time.Time) []Sample {
	t.Helper()
	got, err := s.query(promql, at)
	if err != nil {
		t.Fatalf("promtest: query %s at %s: %v", promql, at.UTC().Format(time.RFC3339Nano), err)
	}
	return got
}

func (s *Server) query(promql string, at time.Time) ([]Sample, error) {
	q := url.Values{"query": {promql}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1e3, 'f', 3, 64)}}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(s.URL + "/api/v1/query?" + q.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	var r queryResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("HTTP %s: decode %.200q: %w", resp.Status, body, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("HTTP %s: %s: %s", resp.Status, r.ErrorType, r.Error)
	}
	var elems []vectorElem
	switch r.Data.ResultType {
	case "vector":
		err = json.Unmarshal(r.Data.Result, &elems)
	case "scalar":
		elems = make([]vectorElem, 1)
		err = json.Unmarshal(r.Data.Result, &elems[0].Value)
	default:
		err = fmt.Errorf("result type %q, want vector or scalar", r.Data.ResultType)
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s result %s: %w", r.Data.ResultType, r.Data.Result, err)
	}
	out := make([]Sample, 0, len(elems))
	for _, e := range elems {
		smp, err := toSample(e.Metric, e.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, smp)
	}
	slices.SortFunc(out, func(a, b Sample) int { return strings.Compare(a.String(), b.String()) })
	return out, nil
}

func toSample(labels map[string]string, v [2]any) (Sample, error) {
	ts, ok1 := v[0].(float64)
	vs, ok2 := v[1].(string)
	if !ok1 || !ok2 {
		return Sample{}, fmt.Errorf("value %v is not [time, \"value\"]", v)
	}
	f, err := strconv.ParseFloat(vs, 64)
	if err != nil {
		return Sample{}, fmt.Errorf("value %q: %w", vs, err)
	}
	if labels == nil {
		labels = map[string]string{}
	}
	return Sample{Labels: labels, Value: f, Time: time.UnixMilli(int64(ts * 1e3)).UTC()}, nil
}
