package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/emitter"
	"github.com/dynometrics/dynometrics/internal/testproc"
	metrics "github.com/rcrowley/go-metrics"
)

func TestHandlersCountAndTime(t *testing.T) {
	reg := metrics.NewRegistry()
	srv := httptest.NewServer(newApp(reg).routes())
	defer srv.Close()
	for _, p := range []string{"/", "/", "/work", "/health", "/missing"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	em, err := emitter.New(emitter.Config{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	em.WriteTo(&out)
	got := out.String()
	// Compare whole pairs: where the emitter splits lines depends on the
	// length of the (timing-dependent) values before a pair.
	pairs := strings.Fields(got)
	for _, want := range []string{
		"count#http.handler.health.count=1", "count#http.handler.root.count=2", "count#http.handler.work.count=1",
		"count#http.requests=5", "count#http.status.1xx=0", "count#http.status.2xx=4", "count#http.status.4xx=1",
		"count#http.status.5xx=0",
	} {
		if !slices.Contains(pairs, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if !slices.ContainsFunc(pairs, func(p string) bool {
		return strings.HasPrefix(p, "sample#http.handler.work.perc95=") && strings.HasSuffix(p, "ms")
	}) {
		t.Errorf("missing sample#http.handler.work.perc95=…ms in\n%s", got)
	}
}

// startApp runs the app with args until the returned stop is called; stop
// returns run's error. addr is where it listens.
func startApp(t *testing.T, args ...string) (stdout, stderr *testproc.LimitedBuffer, addr string, stop func() error) {
	t.Helper()
	stdout, stderr = &testproc.LimitedBuffer{}, &testproc.LimitedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), stdout, stderr, func(a string) { addrc <- a })
	}()
	select {
	case addr = <-addrc:
	case err := <-errc:
		t.Fatalf("run: %v", err)
	}
	return stdout, stderr, addr, func() error { cancel(); return <-errc }
}

// TestRunShutdownFlushes runs the whole app, sends a request, stops it as
// SIGTERM would, and checks the final emission carries the request and that
// stdout holds nothing but metric lines.
func TestRunShutdownFlushes(t *testing.T) {
	t.Setenv("EMITTER_INTERVAL", "1h")
	t.Setenv("DEMO_TRAFFIC", "")
	stdout, stderr, addr, stop := startApp(t)
	resp, err := http.Get("http://" + addr + "/work")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	out := stdout.String()
	if !strings.Contains(out, " count#http.requests=1 ") || !strings.Contains(out, " count#http.handler.work.count=1 ") {
		t.Errorf("final emission lacks the request:\n%s", out)
	}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !strings.HasPrefix(l, "at=metrics ") {
			t.Errorf("non-metric line on stdout: %q", l)
		}
	}
	if !strings.Contains(stderr.String(), "webapp listening") {
		t.Errorf("stderr lacks the startup line: %q", stderr.String())
	}
}

// TestRunDemo checks that -demo sends traffic and emits on its own.
func TestRunDemo(t *testing.T) {
	t.Setenv("EMITTER_INTERVAL", "1s")
	stdout, stderr, _, stop := startApp(t, "-demo", "-demo-rate", "50", "-demo-duration", "1200ms")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stderr.String(), "demo traffic done") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	var total int
	for _, f := range strings.Fields(stdout.String()) {
		if v, ok := strings.CutPrefix(f, "count#http.requests="); ok {
			n, _ := strconv.Atoi(v)
			total += n
		}
	}
	if total < 5 {
		t.Errorf("demo sent %d requests, want at least 5:\n%s", total, stdout.String())
	}
	if !strings.Contains(stdout.String(), "count#http.status.4xx=") {
		t.Errorf("no status counts:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "demo traffic done (-demo-duration elapsed)") {
		t.Errorf("-demo-duration elapsed without saying so:\n%s", stderr.String())
	}
}

func TestBadFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"-nope"}, &stdout, &stderr, nil); err == nil {
		t.Error("run accepted an unknown flag")
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout: %q", stdout.String())
	}
}

// TestDemoRunsUntilStopped: -demo without -demo-duration keeps sending
// requests until the app is stopped, prints the URL it serves, and says
// nothing about the demo being done when it is interrupted.
func TestDemoRunsUntilStopped(t *testing.T) {
	t.Setenv("EMITTER_INTERVAL", "1s")
	stdout, stderr, addr, stop := startApp(t, "-demo", "-demo-rate", "20")
	// Two emissions with requests in each: traffic goes on past the first.
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(stdout.String(), "count#http.requests=") < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	var perEmission []string
	for _, f := range strings.Fields(stdout.String()) {
		if v, ok := strings.CutPrefix(f, "count#http.requests="); ok {
			perEmission = append(perEmission, v)
		}
	}
	if len(perEmission) < 3 || perEmission[1] == "0" {
		t.Errorf("requests per emission %v: want traffic in the second emission too", perEmission)
	}
	if err := stderr.String(); !strings.Contains(err, "serving http://"+addr) || !strings.Contains(err, "Ctrl-C stops it") {
		t.Errorf("stderr does not say where the app serves and how to stop it:\n%s", err)
	}
	if strings.Contains(stderr.String(), "demo traffic done") {
		t.Errorf("stderr says the demo is done after an interrupt:\n%s", stderr.String())
	}
}

func TestDefaultPort(t *testing.T) {
	if DefaultPort == "5000" || DefaultPort == "7000" {
		t.Errorf("DefaultPort %s collides with macOS AirPlay", DefaultPort)
	}
	t.Setenv("PORT", "")
	// Keep the default port busy: the demo falls back to a free port, the
	// plain app reports the busy port.
	// When something else already holds it, it is busy all the same.
	if busy, err := net.Listen("tcp", ":"+DefaultPort); err == nil {
		defer busy.Close()
	}
	ln, err := listen("", true)
	if err != nil {
		t.Fatalf("demo with a busy default port: %v", err)
	}
	ln.Close()
	if _, err := listen("", false); err == nil {
		t.Error("without -demo a busy default port is not reported")
	}
	if got := displayAddr(&net.TCPAddr{IP: net.IPv6unspecified, Port: 8000}); got != "localhost:8000" {
		t.Errorf("displayAddr(:8000) = %s", got)
	}
}
