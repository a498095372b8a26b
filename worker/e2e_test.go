package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/librato"
	"github.com/dynometrics/dynometrics/internal/librato/libratotest"
	"github.com/dynometrics/dynometrics/internal/outlet"
)

const (
	testUser   = "drain-user"
	testPass   = "drain-secret-pass"
	testLUser  = "ops@example.com"
	testLToken = "librato-secret-token"
	testPrefix = "us-east.prod.app"
)

// want is one measurement the fake Librato must have accepted.
type want struct {
	name, source string
	value        float64 // gauges
	summary      bool    // complex gauge: count, sum, min, max, sum_squares
	count        int64
	sum, min     float64
	max, ss      float64
	unit         string
}

func gauge(name, source string, v float64, unit string) want {
	return want{name: name, source: source, value: v, unit: unit}
}

// measure is a complex gauge plus its three percentile gauges.
func measure(name, source string, count int64, sum, min, max, ss, med, p95, p99 float64, unit string) []want {
	return []want{
		{name: name, source: source, summary: true, count: count, sum: sum, min: min, max: max, ss: ss, unit: unit},
		gauge(name+".median", source, med, unit),
		gauge(name+".perc95", source, p95, unit),
		gauge(name+".perc99", source, p99, unit),
	}
}

// drainWants is what testdata/drain.txt must produce, computed by hand from
// the fixture (nearest-rank percentiles).
func drainWants() []want {
	var w []want
	w = append(w, measure("router.connect", "web.1", 2, 1, 0, 1, 1, 0, 1, 1, "ms")...)
	w = append(w, measure("router.service", "web.1", 2, 32, 12, 20, 544, 12, 20, 20, "ms")...)
	w = append(w, measure("router.bytes", "web.1", 2, 612, 100, 512, 272144, 100, 512, 512, "bytes")...)
	w = append(w, measure("router.connect", "web.2", 1, 0, 0, 0, 0, 0, 0, 0, "ms")...)
	w = append(w, measure("router.service", "web.2", 1, 30000, 30000, 30000, 9e8, 30000, 30000, 30000, "ms")...)
	w = append(w, measure("router.bytes", "web.2", 1, 0, 0, 0, 0, 0, 0, 0, "bytes")...)
	w = append(w, measure("db.latency", "web.2", 3, 21, 4, 10, 165, 7, 10, 10, "ms")...)
	// The labs form `measure=memory_rss val=30.5 units=MB` is a measure.
	w = append(w, measure("memory_rss", "web.2", 1, 30.5, 30.5, 30.5, 930.25, 30.5, 30.5, 30.5, "MB")...)
	w = append(w,
		gauge("router.status.2xx", "web.1", 2, ""),
		gauge("router.status.5xx", "web.2", 1, ""),
		gauge("router.error.H12", "web.2", 1, ""),
		gauge("router.status.5xx", "router", 1, ""),
		gauge("router.error.H14", "router", 1, ""),
		gauge("load_avg_1m", "web.1", 0.5, ""),
		gauge("load_avg_5m", "web.1", 1.1, ""),
		gauge("load_avg_15m", "web.1", 0.99, ""),
		gauge("memory_total", "web.1", 21, "MB"),
		gauge("memory_rss", "web.1", 21.22, "MB"),
		gauge("memory_pgpgin", "web.1", 348836, "pages"),
		gauge("current_transaction", "DATABASE", 1947, ""),
		gauge("db_size", "DATABASE", 8945836, "bytes"),
		gauge("active-connections", "DATABASE", 3, ""),
		gauge("index-cache-hit-rate", "DATABASE", 0.99396, ""),
		gauge("active-connections", "REDIS", 27, ""),
		gauge("hit-rate", "REDIS", 0.0096774, ""),
		gauge("logplex.dropped", "", 15, ""),
		gauge("jobs.enqueued", "web.2", 8, ""),
		gauge("queue.depth", "web.2", 9, ""),
	)
	return w
}

var placeholder = regexp.MustCompile(`\{T\+([0-9.]+)\}`)

// drainMessages reads the fixture and fills in times relative to start.
func drainMessages(t *testing.T, start time.Time) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "drain.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		msgs = append(msgs, placeholder.ReplaceAllStringFunc(line, func(m string) string {
			s, _ := strconv.ParseFloat(placeholder.FindStringSubmatch(m)[1], 64)
			return syslogTime(start.Add(time.Duration(s * float64(time.Second))))
		}))
	}
	return msgs
}

func syslogTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000+00:00") }

// frame builds a logplex body: octet-counted messages, each ending in LF.
func frame(msgs ...string) []byte {
	var b bytes.Buffer
	for _, m := range msgs {
		fmt.Fprintf(&b, "%d %s\n", len(m)+1, m)
	}
	return b.Bytes()
}

// appLines frames an app's stdout lines as Logplex would deliver them from
// dyno web.1, 10 ms apart from at.
func appLines(lines []string, at time.Time) []string {
	var msgs []string
	for i, l := range lines {
		msgs = append(msgs, fmt.Sprintf("<190>1 %s host app web.1 - %s", syslogTime(at.Add(time.Duration(i)*10*time.Millisecond)), l))
	}
	return msgs
}

// emitterWants is an independent oracle for emitter output: count# pairs
// summed, sample# pairs last-wins, units split off the number.
func emitterWants(t *testing.T, lines []string, source string) []want {
	t.Helper()
	counts := map[string]float64{}
	samples := map[string]want{}
	for _, l := range lines {
		for _, f := range strings.Fields(l) {
			kind, rest, ok := strings.Cut(f, "#")
			if !ok {
				continue
			}
			k, v, _ := strings.Cut(rest, "=")
			num := strings.TrimRightFunc(v, func(r rune) bool { return r == '%' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') })
			x, err := strconv.ParseFloat(num, 64)
			if err != nil {
				t.Fatalf("emitter printed %q: %v", f, err)
			}
			switch kind {
			case "count":
				counts[k] += x
			case "sample":
				samples[k] = gauge(k, source, x, v[len(num):])
			}
		}
	}
	var w []want
	for k, v := range counts {
		w = append(w, gauge(k, source, v, ""))
	}
	for _, s := range samples {
		w = append(w, s)
	}
	return w
}

// checkAccepted compares what the fake accepted with wants, for measure_time
// at and period 60: every want exactly once, nothing else.
func checkAccepted(t *testing.T, got []libratotest.Measurement, wants []want, at time.Time) {
	t.Helper()
	type key struct {
		name, source string
		time         int64
	}
	seen := map[key]libratotest.Measurement{}
	for _, m := range got {
		k := key{m.Name, m.Source, m.Time}
		if _, dup := seen[k]; dup {
			t.Errorf("accepted twice: %s source=%q time=%d", m.Name, m.Source, m.Time)
		}
		seen[k] = m
	}
	for _, w := range wants {
		k := key{testPrefix + "." + w.name, w.source, at.Unix()}
		m, ok := seen[k]
		if !ok {
			t.Errorf("missing %s source=%q at %d", k.name, k.source, k.time)
			continue
		}
		delete(seen, k)
		if m.Period != 60 {
			t.Errorf("%s source=%q: period %d, want 60", k.name, k.source, m.Period)
		}
		if m.Unit != w.unit {
			t.Errorf("%s source=%q: unit %q, want %q", k.name, k.source, m.Unit, w.unit)
		}
		if w.summary {
			if !m.Summary || m.HasValue || m.Count != w.count || !near(m.Sum, w.sum) || m.Min != w.min || m.Max != w.max || !near(m.SumSquares, w.ss) {
				t.Errorf("%s source=%q: got %+v, want count=%d sum=%v min=%v max=%v sum_squares=%v", k.name, k.source, m, w.count, w.sum, w.min, w.max, w.ss)
			}
			continue
		}
		if !m.HasValue || m.Summary || !near(m.Value, w.value) {
			t.Errorf("%s source=%q: got value %v (summary %v), want %v", k.name, k.source, m.Value, m.Summary, w.value)
		}
	}
	for k := range seen {
		t.Errorf("unexpected measurement %s source=%q at %d", k.name, k.source, k.time)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// runWorker runs the worker in-process with a drain on 127.0.0.1 and returns
// the drain URL and a stop function that shuts it down like SIGTERM does and
// returns run's error.
func runWorker(t *testing.T, cfg Config, queue outlet.QueueConfig, clock *testClock) (drainURL string, wk *worker, stop func() error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, cfg, options{
			stdout:        io.Discard,
			logger:        slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)),
			drainListener: l,
			flushEvery:    20 * time.Millisecond,
			queue:         queue,
			now:           clock.Now,
			ready:         func(w *worker) { wk = w; close(ready) },
		})
	}()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("worker did not start: %v", err)
	}
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		err := <-errc
		mu.Lock()
		defer mu.Unlock()
		for _, secret := range []string{testPass, testLToken, "heroku-secret-key", "sig=secret"} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("worker logs contain a secret:\n%s", logs.String())
			}
		}
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return "http://" + l.Addr().String() + "/logs", wk, stop
}

// testClock is a clock the test sets; the worker's flushes follow it.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func postDrain(t *testing.T, url, frameID string, body []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(testUser, testPass)
	req.Header.Set("Content-Type", "application/logplex-1")
	req.Header.Set("Logplex-Frame-Id", frameID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %s", frameID, resp.Status)
	}
}

func testConfig(libratoURL string) Config {
	return Config{
		Drain:           drain.Env{User: testUser, Password: testPass},
		Metrics:         outlet.Env{Prefix: testPrefix},
		Buckets:         aggregate.Env{Resolution: time.Minute, Grace: time.Second},
		Librato:         librato.Env{User: testLUser, Token: testLToken, URL: libratoURL, API: "metrics"},
		ShutdownTimeout: 20 * time.Second,
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// webappOutput runs the example web app with a 1 s emitter interval, sends it
// n requests, stops it with SIGTERM and returns the metric lines it printed.
func webappOutput(t *testing.T, n int) []string {
	t.Helper()
	bin := buildBinary(t, "../examples/webapp")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PORT="+port, "EMITTER_INTERVAL=1s")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	base := "http://127.0.0.1:" + port + "/"
	waitFor(t, "webapp to listen", 10*time.Second, func() bool {
		r, err := http.Get(base + "health")
		if err == nil {
			r.Body.Close()
		}
		return err == nil
	})
	for i := 0; i < n; i++ {
		r, err := http.Get(base)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("webapp exit: %v", err)
	}
	var lines []string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) == 0 {
		t.Fatal("webapp printed no metric lines")
	}
	return lines
}

var (
	buildMu  sync.Mutex
	builtBin = map[string]string{}
	buildDir string
)

// buildBinary builds a main package once per test binary run.
func buildBinary(t *testing.T, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if b, ok := builtBin[pkg]; ok {
		return b
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "dynometrics-e2e")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	bin := filepath.Join(buildDir, filepath.Base(filepath.Join(wd(t), pkg)))
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	builtBin[pkg] = bin
	return bin
}

func wd(t *testing.T) string {
	d, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// clockBoundParallel is how many parallel tests run at once unless -parallel
// is given. The parallel tests of this package spend their time waiting for
// buckets, leases and hand-overs of the built worker (a separate process,
// without -race), not on the CPU: the default, GOMAXPROCS (2 on a small CI
// machine), left them mostly sleeping two at a time. More than 6 at once
// on 2 busy cores starved the timing-sensitive ones (a lease holder's
// start-up, a bucket closed before a retried hand-over landed); the
// CPU-heavy and latency-sensitive tests (TestBucketAtSeriesLimitDeliveredWhole,
// TestFirstBucketNoSpike, the hardening tests) are not parallel.
const clockBoundParallel = 6

func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		if err := flag.Set("test.parallel", strconv.Itoa(max(clockBoundParallel, runtime.GOMAXPROCS(0)))); err != nil {
			panic(err)
		}
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// TestEndToEndLibrato sends the example web app's real emitter output and a
// recorded drain (router, runtime old and new, add-ons, L10, a broken frame
// and a broken pair) through the HTTP drain and checks every gauge the strict
// fake Librato accepted.
func TestEndToEndLibrato(t *testing.T) {
	fake := libratotest.New(t, libratotest.Options{User: testLUser, Token: testLToken})
	start := time.Now().UTC().Truncate(time.Minute).Add(-2 * time.Minute)
	clock := &testClock{t: start.Add(40 * time.Second)} // the bucket is open
	url, _, stop := runWorker(t, testConfig(fake.URL), outlet.QueueConfig{}, clock)

	web := webappOutput(t, 7)
	wants := append(drainWants(), emitterWants(t, web, "web.1")...)
	if !containsWant(wants, "http.requests", 7+1) { // 7 requests plus the readiness probe
		t.Fatalf("oracle: webapp output does not count 8 requests: %q", web)
	}

	msgs := drainMessages(t, start)
	body := frame(msgs[:5]...)
	body = append(body, "99999999999x <190>1 broken frame\n"...)
	body = append(body, frame(msgs[5:]...)...)
	postDrain(t, url, "frame-1", body)
	postDrain(t, url, "frame-2", frame(appLines(web, start.Add(30*time.Second))...))
	postDrain(t, url, "frame-2", frame(appLines(web, start.Add(30*time.Second))...)) // a Logplex retry
	time.Sleep(100 * time.Millisecond)                                               // several flush ticks: nothing is due yet
	if n := len(fake.Measurements()); n != 0 {
		t.Fatalf("the fake received %d measurements before the bucket ended", n)
	}
	clock.Set(start.Add(time.Minute + 2*time.Second)) // bucket end plus grace

	waitFor(t, "every measurement at the fake", 10*time.Second, func() bool {
		if len(fake.Measurements()) >= len(wants) {
			return true
		}
		t.Logf("fake has %d of %d: %q errors %q", len(fake.Measurements()), len(wants), sortedNames(fake.Measurements()), fake.Errors())
		return false
	})
	if err := stop(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	checkAccepted(t, fake.Measurements(), wants, start)
	if errs := fake.Errors(); len(errs) > 0 {
		t.Errorf("the fake refused requests: %q", errs)
	}
}

func containsWant(ws []want, name string, v float64) bool {
	for _, w := range ws {
		if w.name == name && w.value == v {
			return true
		}
	}
	return false
}

// TestEndToEndLibratoFaults makes the fake fail for several intervals (5xx,
// 429, dropped connections) while three buckets wait: every measurement
// arrives once, none is lost or duplicated.
func TestEndToEndLibratoFaults(t *testing.T) {
	fake := libratotest.New(t, libratotest.Options{User: testLUser, Token: testLToken})
	fake.Inject(3, libratotest.Fault{Status: http.StatusInternalServerError})
	fake.Inject(2, libratotest.Fault{Status: http.StatusTooManyRequests})
	fake.Inject(2, libratotest.Fault{Drop: true})
	fake.Inject(2, libratotest.Fault{Status: http.StatusServiceUnavailable})
	now := time.Now().UTC().Truncate(time.Minute)
	starts := []time.Time{now.Add(-5 * time.Minute), now.Add(-4 * time.Minute), now.Add(-3 * time.Minute)}
	clock := &testClock{t: starts[0].Add(30 * time.Second)}
	url, wk, stop := runWorker(t, testConfig(fake.URL), outlet.QueueConfig{MinBackoff: 5 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}, clock)
	for i, s := range starts {
		clock.Set(s.Add(30 * time.Second)) // the previous bucket is now due
		postDrain(t, url, fmt.Sprintf("bucket-%d", i), frame(drainMessages(t, s)...))
		waitFor(t, "the body to be parsed", 5*time.Second, func() bool { return wk.drain.Stats().Processed == uint64(i+1) })
	}
	clock.Set(now)
	total := 3 * len(drainWants())
	waitFor(t, "every bucket at the fake", 15*time.Second, func() bool { return len(fake.Measurements()) >= total })
	if err := stop(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	if c := fake.Counts(); c.Faults != 9 {
		t.Errorf("fake answered %d faults, want 9 (all injected faults used)", c.Faults)
	}
	got := fake.Measurements()
	if len(got) != total {
		t.Errorf("fake accepted %d measurements, want %d", len(got), total)
	}
	for _, s := range starts {
		var in []libratotest.Measurement
		for _, m := range got {
			if m.Time == s.Unix() {
				in = append(in, m)
			}
		}
		checkAccepted(t, in, drainWants(), s)
	}
}

// TestSIGTERMMidBucket runs the worker binary, posts lines of the current,
// still open bucket, and sends SIGTERM at once: the worker flushes the partial
// bucket, delivers it, and exits 0 well within Heroku's 30 s.
func TestSIGTERMMidBucket(t *testing.T) {
	t.Parallel() // waits on the clock, not the CPU: overlaps with the other long end-to-end tests
	fake := libratotest.New(t, libratotest.Options{User: testLUser, Token: testLToken})
	p := startBinary(t, buildBinary(t, "."),
		"METRICS_PREFIX="+testPrefix, "METRICS_GRACE=30m", // the bucket cannot be due before SIGTERM
		"LIBRATO_USER="+testLUser, "LIBRATO_TOKEN="+testLToken, "LIBRATO_URL="+fake.URL)
	url := p.url

	start := time.Now().UTC().Truncate(time.Minute)
	postDrain(t, url, "mid-bucket", frame(drainMessages(t, start)...))
	sent := time.Now()
	p.term(t)
	if d := time.Since(sent); d > 25*time.Second {
		t.Errorf("worker took %s to exit after SIGTERM", d)
	}
	checkAccepted(t, fake.Measurements(), drainWants(), start)
	if strings.Contains(p.stderr.String(), testPass) || strings.Contains(p.stderr.String(), testLToken) {
		t.Errorf("worker logs contain a secret:\n%s", p.stderr.String())
	}
}

// startBinary starts the built worker (startProc) with the drain's test
// credentials, which env may override.
func startBinary(t *testing.T, bin string, env ...string) *proc {
	t.Helper()
	return startProc(t, bin, append([]string{"DRAIN_USER=" + testUser, "DRAIN_PASSWORD=" + testPass}, env...))
}

// sortedNames is for failure messages.
func sortedNames(ms []libratotest.Measurement) []string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Name+"/"+m.Source)
	}
	sort.Strings(s)
	return s
}
