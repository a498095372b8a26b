package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/input/budget"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/input/otlp"
	"github.com/dynometrics/dynometrics/internal/testproc"
	colmetricspb "go.opentelemetry.io/proto/slim/otlp/collector/metrics/v1"
	logspb "go.opentelemetry.io/proto/slim/otlp/logs/v1"
	metricspb "go.opentelemetry.io/proto/slim/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"
)

// worstCaseRSSKB is docs/hardening.md's worst case of the worker's memory
// with the default settings and empty aggregator and view, in kB: twice (the
// garbage collector's headroom at GOGC=100) the request bytes in flight,
// the drain's queue and free list, the OTLP queue, the connections and the
// OTLP body buffers kept for reuse, plus 32 MiB of runtime and binary.
func worstCaseRSSKB() int64 {
	in := int64(budget.Default + 2*drain.DefaultMaxQueueBytes + otlp.MaxQueueBytes +
		drain.DefaultMaxConns*connBytes + otlp.MaxConcurrentDecodes*(1<<20))
	return (2*in + 32<<20) >> 10
}

// connBytes is what one open connection on PORT costs at most while its
// headers are read: MaxHeaderBytes, net/http's read and write buffers and a
// goroutine's stack.
const connBytes = drain.MaxHeaderBytes + 4<<10 + 4<<10 + 8<<10

// Hardening end-to-end tests (issue 20): each attack runs against the built
// worker binary on 127.0.0.1, beside a legitimate drain stream where the
// attack is about availability.

const (
	hardenUser     = "drain"
	hardenPassword = "drain-secret-pw"
	hardenViewPW   = "view-secret-pw"
)

// hardenWorker starts the worker binary on PORT with drain credentials and
// VIEW_PASSWORD (so that the view is served at / on PORT), plus env.
func hardenWorker(t *testing.T, env ...string) *proc {
	t.Helper()
	bin := buildBinary(t, ".")
	base := append([]string{}, "DRAIN_USER="+hardenUser, "DRAIN_PASSWORD="+hardenPassword,
		"VIEW_USER=ops", "VIEW_PASSWORD="+hardenViewPW, "METRICS_RESOLUTION=1s", "METRICS_GRACE=1s",
		"EMITTER_INTERVAL=1h")
	return startProc(t, bin, append(base, env...))
}

// legitStream posts one small drain body at a time from one client (with
// Logplex's 5 s timeout) until ctx ends, and returns the latency of every
// POST answered 204, how many failed and why the first one did. Like
// Logplex, each POST carries a Frame-Id of its own and is sent again when a
// reused keep-alive connection was closed under it (the drain closes idle
// connections while others wait for a slot, docs/hardening.md): the
// Idempotency-Key header lets net/http's transport do that resend.
func legitStream(ctx context.Context, url string) (lat []time.Duration, failed int, why string) {
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	body := frame(fmt.Sprintf("<190>1 %s host app web.1 - count#legit=1", syslogTime(time.Now())))
	fail := func(reason string) {
		if failed++; why == "" {
			why = reason
		}
	}
	for i := 0; ctx.Err() == nil; i++ {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.SetBasicAuth(hardenUser, hardenPassword)
		req.Header.Set("Content-Type", "application/logplex-1")
		id := fmt.Sprintf("legit-%d-%d", time.Now().UnixNano(), i)
		req.Header.Set("Logplex-Frame-Id", id)
		req.Header.Set("Idempotency-Key", id)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			fail(err.Error())
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			fail(resp.Status)
			continue
		}
		lat = append(lat, time.Since(start))
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	return lat, failed, why
}

// p99 is the nearest-rank 99th percentile of d.
func p99(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)*99+99)/100-1]
}

// slowAttack runs n connections that each send a request's headers (no or
// wrong credentials, a declared body of 200 KB) to one of paths, then trickle
// its body a byte every 200 ms; a connection the worker closes is opened
// again 200 ms later. It returns a stop function and the number of 401s seen.
func slowAttack(addr string, n int, paths []string) (stop func(), got401 *atomic.Int64) {
	ctx, cancel := context.WithCancel(context.Background())
	got401 = new(atomic.Int64)
	var wg sync.WaitGroup
	for i := range n {
		path := paths[i%len(paths)]
		auth := ""
		if i%2 == 1 {
			auth = "Authorization: Basic YXR0YWNrZXI6Z3Vlc3M=\r\n" // attacker:guess
		}
		wg.Go(func() {
			for ctx.Err() == nil {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				stopped := context.AfterFunc(ctx, func() { c.Close() })
				fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: w\r\n%sContent-Type: application/x-protobuf\r\nContent-Length: 200000\r\n\r\n", path, auth)
				go func() {
					if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil && resp.StatusCode == http.StatusUnauthorized {
						got401.Add(1)
					}
				}()
				for ctx.Err() == nil {
					if _, err := c.Write([]byte{'x'}); err != nil {
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
				stopped()
				c.Close()
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
			}
		})
	}
	return func() { cancel(); wg.Wait() }, got401
}

// TestSlowUnauthenticatedBodiesOnEveryPath is issue 20's first attack: 300
// slow unauthenticated connections on the OTLP receiver's paths, the view
// on PORT and an unknown path, beside a legitimate drain stream. Before the
// fix, every 401 outside /logs kept reading the declared body for up to
// ReadTimeout (10 s), the attack held the 256 connection slots, and the
// legitimate stream fell to 36 POSTs in 35 s with a p99 of 5,007 ms.
func TestSlowUnauthenticatedBodiesOnEveryPath(t *testing.T) {
	p := hardenWorker(t)
	addr := strings.TrimSuffix(strings.TrimPrefix(p.url, "http://"), "/logs")
	stop, got401 := slowAttack(addr, 300, []string{"/v1/metrics", "/v1/logs", "/", "/api/series?name=x", "/nowhere"})
	defer stop()
	time.Sleep(time.Second) // the attack takes its slots
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	lat, failed, why := legitStream(ctx, p.url)
	stop()
	t.Logf("legitimate stream beside 300 slow unauthenticated connections: %d POSTs in 3 s, %d failed (%s), p99 %v; %d 401s",
		len(lat), failed, why, p99(lat), got401.Load())
	// Unhindered, one client posts about every 20-25 ms: over 100 in 3 s.
	if len(lat) < 60 || failed > 0 || p99(lat) > 500*time.Millisecond {
		t.Errorf("legitimate stream: %d POSTs, %d failed (%s), p99 %v; want at least 60, none failed, p99 under 500ms",
			len(lat), failed, why, p99(lat))
	}
	if got401.Load() < 300 {
		t.Errorf("%d attack requests answered 401, want at least 300", got401.Load())
	}
}

// procKB reads a field of /proc/PID/status in kB (VmRSS, VmHWM).
func procKB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// TestContentLengthFlood is issue 20's second attack: with valid
// credentials, 200 requests at a time declare 4 MiB on /v1/metrics (or 1 MB
// on /logs) and send 10 bytes. Before, each reserved its declared size as it
// started reading: the OTLP receiver's memory grew without bound, and the
// drain's reservations turned legitimate POSTs into 503s. Now request bytes
// are taken from one budget as they arrive: the worker's peak RSS must stay
// under the worst case docs/hardening.md states for the default settings,
// and a legitimate OTLP request and the drain stream go through. (A flood
// of bytes that do arrive, beyond the budget, is refused with 503 and
// Retry-After: internal/input/otlp TestBudget, internal/input/drain
// TestBusyWhileReading.)
func TestContentLengthFlood(t *testing.T) {
	p := hardenWorker(t)
	base := strings.TrimSuffix(p.url, "/logs")
	addr := strings.TrimPrefix(base, "http://")
	pid := p.cmd.Process.Pid
	before := procKB(t, pid, "VmRSS")

	// 200 requests at a time, each sending 10 bytes of its declared 4 MiB
	// and giving up 300 ms later, when another takes its place: 3 s.
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(hardenUser+":"+hardenPassword))
	flood, stop := context.WithTimeout(context.Background(), 3*time.Second)
	defer stop()
	var wg sync.WaitGroup
	var sent atomic.Int64
	for i := range 200 {
		path, size := "/v1/metrics", 4<<20
		if i%4 == 3 {
			path, size = "/logs", 1000000
		}
		wg.Go(func() {
			for flood.Err() == nil {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: w\r\nAuthorization: %s\r\nContent-Type: application/x-protobuf\r\nContent-Length: %d\r\n\r\n0123456789", path, auth, size)
				sent.Add(1)
				time.Sleep(300 * time.Millisecond)
				c.Close()
			}
		})
	}
	time.Sleep(time.Second)
	logs := &logspb.LogsData{ResourceLogs: []*logspb.ResourceLogs{firLogs("web.1", time.Now(), "count#flood.legit=1")}}
	status, err := tryPostOTLP(base+"/v1/logs", logs)
	if err != nil {
		t.Logf("legitimate OTLP request: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	lat, failed, why := legitStream(ctx, p.url)
	cancel()
	wg.Wait()
	peak := procKB(t, pid, "VmHWM")
	limit := worstCaseRSSKB()
	t.Logf("%d flood requests; RSS %d MB before the flood, peak %d MB during it (worst case stated: %d MB); legitimate OTLP request: %d; drain stream: %d POSTs, %d failed, p99 %v",
		sent.Load(), before>>10, peak>>10, limit>>10, status, len(lat), failed, p99(lat))
	if peak > limit {
		t.Errorf("peak RSS %d MB over the stated worst case %d MB", peak>>10, limit>>10)
	}
	if peak-before > 64<<10 {
		t.Errorf("the flood of 2 KB of bodies grew RSS by %d MB", (peak-before)>>10)
	}
	if status != http.StatusOK || len(lat) < 10 || failed > 0 {
		t.Errorf("legitimate traffic during the flood: OTLP %d, drain %d POSTs with %d failed (%s)", status, len(lat), failed, why)
	}
}

// tryPostOTLP posts m as protobuf with the drain's credentials and returns
// the status.
func tryPostOTLP(url string, m proto.Message) (int, error) {
	body, err := proto.Marshal(m)
	if err != nil {
		return 0, err
	}
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.SetBasicAuth(hardenUser, hardenPassword)
	req.Header.Set("Content-Type", "application/x-protobuf")
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// TestEchoedTokenNeverLogged is issue 20's third attack: an OTLP receiver
// refuses every request with 400 and a body that echoes the request's
// Authorization header, each in one encoding a receiver may use; the
// worker's log says the batch was refused and never holds the token.
// Before, System.Text.Json's default escaping (\/ for /, \u002b for +) put
// the token into three warnings.
func TestEchoedTokenNeverLogged(t *testing.T) {
	const token = "otlp/tok+SECRET3="
	bin := buildBinary(t, ".")
	echoes := map[string]func(h string) string{
		"System.Text.Json": func(h string) string {
			return `{"error":"unauthorized","headers":{"Authorization":"` +
				strings.NewReplacer("/", `\/`, "+", `\u002b`, "=", `\u003D`).Replace(h) + `"}}`
		},
		"Go JSON, every character escaped": func(h string) string {
			var b strings.Builder
			for _, c := range h {
				fmt.Fprintf(&b, `\u%04X`, c)
			}
			return `{"message":"bad header ` + b.String() + `"}`
		},
		"URL-encoded":       func(h string) string { return "redirect=/login?auth=" + url.QueryEscape(h) },
		"URL-encoded upper": func(h string) string { return "auth=" + strings.ToUpper(url.PathEscape(h)) },
		"base64":            func(h string) string { return "x-echo: " + base64.StdEncoding.EncodeToString([]byte(h)) },
		"HTML": func(h string) string {
			return "<p>" + strings.NewReplacer("/", "&#x2F;", "+", "&#43;").Replace(html.EscapeString(h)) + "</p>"
		},
	}
	for name, enc := range echoes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var refused atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				refused.Add(1)
				http.Error(w, enc(r.Header.Get("Authorization")), http.StatusBadRequest)
			}))
			defer srv.Close()
			cmd := exec.Command(bin, "-stdin")
			cmd.Env = append(cleanEnv(), "OTEL_EXPORTER_OTLP_ENDPOINT="+srv.URL,
				"OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20"+url.QueryEscape(token),
				"METRICS_RESOLUTION=1s", "EMITTER_INTERVAL=1h", "SHUTDOWN_TIMEOUT=5s")
			cmd.Stdin = strings.NewReader("count#echo.test=1\n")
			var stderr testproc.LimitedBuffer
			cmd.Stderr = &stderr
			cmd.Stdout = io.Discard
			if err := cmd.Run(); err != nil {
				t.Logf("worker: %v", err)
			}
			log := stderr.String()
			if refused.Load() == 0 || !strings.Contains(log, "refused by receiver") {
				t.Fatalf("the receiver refused %d requests; the log says nothing of it:\n%s", refused.Load(), log)
			}
			for _, leak := range []string{"SECRET3", "secret3", "tok", enc("Bearer " + token)} {
				if strings.Contains(log, leak) {
					t.Errorf("the log holds %q:\n%s", leak, log)
				}
			}
		})
	}
}

// TestPasswordGuessing is issue 20's fourth attack: one client guesses the
// view's password on PORT as fast as it can for 2 s, behind a router that
// appends its address to X-Forwarded-For (earlier entries vary: the client
// writes them). Before, it checked about 5,000 passwords a second, unlogged
// and uncounted. Now, after FreeLoginFailures wrong passwords, it is refused
// 429 unchecked; the failures are logged; another client logs in.
func TestPasswordGuessing(t *testing.T) {
	p := hardenWorker(t)
	base := strings.TrimSuffix(p.url, "/logs")
	client := &http.Client{Timeout: 5 * time.Second}
	guess := func(from, pass string, i int) int {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/metrics", nil)
		req.SetBasicAuth("ops", pass)
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.9.%d.%d, %s", i%250, i/250%250, from))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	codes := map[int]int{}
	n := 0
	for start := time.Now(); time.Since(start) < 2*time.Second; n++ {
		codes[guess("203.0.113.9", fmt.Sprintf("guess-%d", n), n)]++
	}
	ok := guess("198.51.100.4", hardenViewPW, 0)
	t.Logf("%d guesses in 2 s: %d checked (401), %d refused unchecked (429); another client's login: %d",
		n, codes[http.StatusUnauthorized], codes[http.StatusTooManyRequests], ok)
	if codes[http.StatusUnauthorized] > 10 || ok != http.StatusOK {
		t.Errorf("%d passwords checked, want at most 10; the other client got %d", codes[http.StatusUnauthorized], ok)
	}
	waitFor(t, "the failed logins logged", 2*time.Second, func() bool {
		return strings.Contains(p.stderr.String(), "view: failed login") && strings.Contains(p.stderr.String(), "203.0.113.9")
	})
	if strings.Contains(p.stderr.String(), "guess-") {
		t.Error("a guessed password reached the log")
	}
}

// TestOTLPSpecAndSpoofedNames is issue 20's sixth finding, against the
// built worker with the view on PORT: a negative value on a monotonic delta
// sum, a point whose start time is after its time, and a name with U+202E
// are refused in partial_success; a drain line with such a name is not
// shown by the view; the good metric beside them is.
func TestOTLPSpecAndSpoofedNames(t *testing.T) {
	p := hardenWorker(t)
	base := strings.TrimSuffix(p.url, "/logs")
	now := uint64(time.Now().UnixNano())
	sum := func(name string, start, at uint64, v float64) *metricspb.Metric {
		return &metricspb.Metric{Name: name, Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
			AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA, IsMonotonic: true,
			DataPoints: []*metricspb.NumberDataPoint{{StartTimeUnixNano: start, TimeUnixNano: at,
				Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: v}}},
		}}}
	}
	req := &metricspb.MetricsData{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource: firResource("web.1"),
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{
			sum("spec.negative", now-1e9, now, -5),
			sum("spec.start_after", now+1e9, now, 1000000005),
			sum("abc\u202egnp.exe", now-1e9, now, 1),
			sum("spec.good", now-1e9, now, 3),
		}}},
	}}}
	body, _ := proto.Marshal(req)
	hreq, _ := http.NewRequest(http.MethodPost, base+"/v1/metrics", bytes.NewReader(body))
	hreq.SetBasicAuth(hardenUser, hardenPassword)
	hreq.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out colmetricspb.ExportMetricsServiceResponse
	if err := proto.Unmarshal(rb, &out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	t.Logf("partial_success: %d rejected, %q", out.GetPartialSuccess().GetRejectedDataPoints(), out.GetPartialSuccess().GetErrorMessage())
	if out.GetPartialSuccess().GetRejectedDataPoints() != 3 {
		t.Errorf("%d points rejected, want 3", out.GetPartialSuccess().GetRejectedDataPoints())
	}
	drainBody := frame(fmt.Sprintf("<190>1 %s host app web.2 - count#abc\u202egnp.exe=1 count#drain.good=1", syslogTime(time.Now())))
	dreq, _ := http.NewRequest(http.MethodPost, p.url, bytes.NewReader(drainBody))
	dreq.SetBasicAuth(hardenUser, hardenPassword)
	if resp, err := http.DefaultClient.Do(dreq); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("drain POST: %v %v", resp, err)
	}
	var names []string
	waitFor(t, "the good metrics in the view", 8*time.Second, func() bool {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/metrics", nil)
		req.SetBasicAuth("ops", hardenViewPW)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var m struct{ Metrics []struct{ Name string } }
		_ = json.NewDecoder(resp.Body).Decode(&m)
		names = names[:0]
		for _, x := range m.Metrics {
			names = append(names, x.Name)
		}
		return slices.Contains(names, "spec.good") && slices.Contains(names, "drain.good")
	})
	for _, n := range names {
		if strings.ContainsRune(n, '\u202e') || strings.HasPrefix(n, "spec.negative") || strings.HasPrefix(n, "spec.start") {
			t.Errorf("the view shows %q", n)
		}
	}
}

// TestBindAddr is issue 20's last finding: the worker listened on every
// interface, with no way to bind one address. With BIND_ADDR=127.0.0.1,
// PORT answers on 127.0.0.1 and not on 127.0.0.2 (another loopback address
// of the same machine).
func TestBindAddr(t *testing.T) {
	p := hardenWorker(t, "BIND_ADDR=127.0.0.1")
	port := strings.TrimSuffix(strings.TrimPrefix(p.url, "http://127.0.0.1:"), "/logs")
	if !strings.Contains(p.stderr.String(), `addr=127.0.0.1:`+port) {
		t.Errorf("the worker does not say it listens on 127.0.0.1:%s:\n%s", port, p.stderr.String())
	}
	c, err := net.DialTimeout("tcp", "127.0.0.2:"+port, time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("127.0.0.2:%s accepted a connection; want only 127.0.0.1", port)
	}
	t.Logf("127.0.0.2:%s: %v", port, err)
}
