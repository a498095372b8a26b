package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/testproc"
)

// liveViewURL finds the address the worker prints for -view.
var liveViewURL = regexp.MustCompile(`msg="live view" url=(http://\S+)`)

// sumPairs adds up every value of key= (e.g. "count#http.requests=") in out.
func sumPairs(t *testing.T, out, key string) int {
	t.Helper()
	total := 0
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, key); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s%s: %v", key, v, err)
			}
			total += n
		}
	}
	return total
}

// TestCtrlCOnThePipeline is README's first command with built binaries,
// `webapp -demo | worker -stdin`, stopped as a terminal's Ctrl-C does it:
// SIGINT to both processes at once. The worker keeps reading until the
// webapp's final emission and the end of the pipe, so every request the app
// counted is in the worker's buckets (issue 12 saw 199 of 208).
func TestCtrlCOnThePipeline(t *testing.T) {
	webBin := buildBinary(t, "../examples/webapp")
	workerBin := buildBinary(t, ".")
	for run := range 2 {
		web := exec.Command(webBin, "-demo", "-demo-rate", "40", "-addr", "127.0.0.1:0")
		web.Env = append(cleanEnv(), "EMITTER_INTERVAL=1s")
		web.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		webOut, err := web.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		worker := exec.Command(workerBin, "-stdin")
		worker.Env = append(cleanEnv(), "METRICS_RESOLUTION=1s")
		pipeR, pipeW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		worker.Stdin = pipeR
		var workerOut, workerErr bytes.Buffer
		worker.Stdout, worker.Stderr = &workerOut, &workerErr
		if err := web.Start(); err != nil {
			t.Fatal(err)
		}
		worker.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: web.Process.Pid} // one process group, as a shell pipeline
		if err := worker.Start(); err != nil {
			web.Process.Kill()
			t.Fatal(err)
		}
		pipeR.Close() // the worker holds it
		// The pipe, keeping a copy of what the app printed.
		var appOut bytes.Buffer
		var mu sync.Mutex
		emissions := 0
		copied := make(chan struct{})
		go func() {
			defer close(copied)
			sc := bufio.NewScanner(webOut)
			for sc.Scan() {
				mu.Lock()
				appOut.Write(sc.Bytes())
				appOut.WriteByte('\n')
				if bytes.Contains(sc.Bytes(), []byte("count#http.requests=")) {
					emissions++
				}
				mu.Unlock()
				if _, err := pipeW.Write(append(sc.Bytes(), '\n')); err != nil {
					t.Errorf("pipe to the worker: %v", err) // the worker exited
				}
			}
			pipeW.Close()
		}()
		deadline := time.Now().Add(15 * time.Second)
		for {
			mu.Lock()
			n := emissions
			mu.Unlock()
			if n >= 2 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Duration(run*300) * time.Millisecond) // mid-interval too
		if err := syscall.Kill(-web.Process.Pid, syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		<-copied
		if err := web.Wait(); err != nil {
			t.Fatalf("webapp exit: %v", err)
		}
		if err := worker.Wait(); err != nil {
			t.Fatalf("worker exit: %v\n%s", err, workerErr.String())
		}
		sent := sumPairs(t, appOut.String(), "count#http.requests=")
		got := sumPairs(t, workerOut.String(), "count#http.requests=")
		if sent < 10 || got != sent {
			t.Errorf("run %d: the app counted %d requests, the worker's buckets hold %d\napp:\n%s\nworker stdout:\n%s\nworker stderr:\n%s",
				run, sent, got, appOut.String(), workerOut.String(), workerErr.String())
		}
		if strings.Contains(workerErr.String(), "did not end") {
			t.Errorf("worker gave up on stdin:\n%s", workerErr.String())
		}
	}
}

// cleanEnv is the test's environment without the variables the worker and
// the emitter read.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(allVarNames(), name) && !strings.HasPrefix(name, "EMITTER_") {
			env = append(env, kv)
		}
	}
	return env
}

// TestOwnOutputPipedBack feeds everything a -stdin worker printed (buckets
// on stdout, self-metrics on stderr) into a second worker: the buckets are
// never counted again; the self-metrics are the worker's own health.
func TestOwnOutputPipedBack(t *testing.T) {
	clearEnv(t)
	t.Setenv("EMITTER_INTERVAL", "1h")
	in := "at=metrics count#http.requests=3 measure#db=5ms sample#queue=2\n"
	var out1, err1 bytes.Buffer
	if code := realMain([]string{"-stdin"}, strings.NewReader(in), &out1, &err1); code != 0 {
		t.Fatalf("first run: exit %d\n%s", code, err1.String())
	}
	buckets := strings.Count(out1.String(), "bucket=")
	if buckets != 3 || !strings.Contains(out1.String(), "count#http.requests=3") {
		t.Fatalf("first run printed:\n%s", out1.String())
	}
	var selfLines []string
	for _, l := range strings.Split(err1.String(), "\n") {
		if strings.HasPrefix(l, "at=metrics ") {
			selfLines = append(selfLines, l)
		}
	}
	back := out1.String() + strings.Join(selfLines, "\n") + "\n"
	var out2, err2 bytes.Buffer
	if code := realMain([]string{"-stdin"}, strings.NewReader(back), &out2, &err2); code != 0 {
		t.Fatalf("second run: exit %d\n%s", code, err2.String())
	}
	for _, l := range strings.Split(strings.TrimSpace(out2.String()), "\n") {
		if !strings.Contains(l, "#worker.") {
			t.Errorf("the second worker counted its input's buckets again: %q", l)
		}
	}
	fields := strings.Fields(err2.String())
	for _, want := range []string{"count#worker.input.own_lines=" + strconv.Itoa(buckets), "count#worker.input.lines=" + strconv.Itoa(len(selfLines))} {
		if !contains(fields, want) {
			t.Errorf("second run's self-metrics lack %s:\n%s", want, err2.String())
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestVersion(t *testing.T) {
	bin := buildBinary(t, ".")
	out, err := exec.Command(bin, "-version").Output()
	if err != nil {
		t.Fatal(err)
	}
	v := strings.TrimSpace(string(out))
	if !strings.HasPrefix(v, "worker ") || !strings.HasSuffix(v, "("+runtime.Version()+")") {
		t.Errorf("worker -version = %q", v)
	}
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}}
	if got := formatVersion(bi); got != "worker v1.2.0 (go1.26.8)" {
		t.Errorf("installed module: %q", got)
	}
	bi = &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-01T14:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	if got := formatVersion(bi); got != "worker (devel) 0123456789ab 2026-12-01T14:00:00Z modified (go1.26.8)" {
		t.Errorf("clone build: %q", got)
	}
}

// TestTimerStatsMoreOftenThanBuckets: an app in another environment emits
// timer statistics twice per bucket; the worker keeps the last and says so,
// once, naming the series; with one emission per bucket it says nothing.
func TestTimerStatsMoreOftenThanBuckets(t *testing.T) {
	start := time.Now().UTC().Truncate(10 * time.Second).Add(-time.Minute)
	emission := func(at time.Duration, perc95 string) string {
		return syslogTime(start.Add(at)) + " app[web.1]: at=metrics count#db.query.count=4 sample#db.query.perc95=" + perc95 + " sample#db.query.max=9ms"
	}
	for name, tc := range map[string]struct {
		lines []string
		warn  bool
	}{
		"5s emissions into 10s buckets":  {[]string{emission(4750*time.Millisecond, "8ms"), emission(9750*time.Millisecond, "3ms"), emission(14750*time.Millisecond, "4ms")}, true},
		"10s emissions into 10s buckets": {[]string{emission(9750*time.Millisecond, "8ms"), emission(19750*time.Millisecond, "3ms")}, false},
	} {
		t.Run(name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("METRICS_RESOLUTION", "10s")
			t.Setenv("EMITTER_INTERVAL", "1h")
			var stdout, stderr bytes.Buffer
			if code := realMain([]string{"-stdin"}, strings.NewReader(strings.Join(tc.lines, "\n")+"\n"), &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr.String())
			}
			got := strings.Count(stderr.String(), "timer statistics arrived more than once in one bucket")
			if tc.warn {
				if got != 1 || !strings.Contains(stderr.String(), "series=sample#db.query.perc95 source=web.1 times=2") ||
					!contains(strings.Fields(stderr.String()), "count#worker.aggregate.partial_timer_stats=1") {
					t.Errorf("want one warning naming sample#db.query.perc95 from web.1 and the self-metric:\n%s", stderr.String())
				}
			} else if got != 0 {
				t.Errorf("warned without cause:\n%s", stderr.String())
			}
		})
	}
}

// TestSecondSignalStopsWaitingForStdin: with a stdin that does not end, a
// second SIGINT stops the wait at once, and what was read is flushed.
func TestSecondSignalStopsWaitingForStdin(t *testing.T) {
	bin := buildBinary(t, ".")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close() // held open: stdin never ends
	cmd := exec.Command(bin, "-stdin")
	cmd.Env = cleanEnv()
	cmd.Stdin = r
	var stdout bytes.Buffer
	var stderr testproc.LimitedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, err := w.Write([]byte("count#http.requests=7\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "printing buckets to stdout") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the signal handlers are in place once the worker runs
	}
	cmd.Process.Signal(syscall.SIGINT)
	for !strings.Contains(stderr.String(), "reading stdin until it ends") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	sent := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
	if d := time.Since(sent); d > 5*time.Second {
		t.Errorf("the second signal took %s to stop the worker", d)
	}
	if !strings.Contains(stdout.String(), " count#http.requests=7\n") || !strings.Contains(stderr.String(), "second signal") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
}

// TestFirstBucketNoSpike is README's try: both binaries built
// before the pipe starts, so the worker reads each of the app's emissions as
// it is printed, no bucket holds more than one interval's requests, and no
// interval warning is logged. The contrast, a worker that starts 7 s after
// the app (as when `go run` was still building the worker while the app
// printed), puts the emissions that waited in the pipe into one bucket: a
// spike, and a warning that names the late read as a cause, not only the
// app's EMITTER_INTERVAL.
func TestFirstBucketNoSpike(t *testing.T) {
	webBin := buildBinary(t, "../examples/webapp")
	workerBin := buildBinary(t, ".")
	const interval = 3 * time.Second
	const rate = 10                            // requests a second
	steady := rate * int(interval/time.Second) // requests in a full bucket
	for _, tc := range []struct {
		name  string
		delay time.Duration
		spike bool
	}{
		{"built binaries", 0, false},
		{"worker started late", 7 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // waits on the clock
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			web := exec.Command(webBin, "-demo", "-demo-rate", strconv.Itoa(rate), "-addr", "127.0.0.1:0")
			web.Env = append(cleanEnv(), "EMITTER_INTERVAL="+interval.String())
			web.Stdout = w
			if err := web.Start(); err != nil {
				t.Fatal(err)
			}
			w.Close()
			time.Sleep(tc.delay)
			worker := exec.Command(workerBin, "-stdin")
			worker.Env = append(cleanEnv(), "METRICS_RESOLUTION="+interval.String(), "EMITTER_INTERVAL=1h")
			worker.Stdin = r
			var stdout, stderr testproc.LimitedBuffer
			worker.Stdout, worker.Stderr = &stdout, &stderr
			if err := worker.Start(); err != nil {
				web.Process.Kill()
				t.Fatal(err)
			}
			r.Close()
			buckets := func() []int {
				var n []int
				for _, l := range strings.Split(stdout.String(), "\n") {
					if _, v, ok := strings.Cut(l, " count#http.requests="); ok {
						c, err := strconv.Atoi(v)
						if err != nil {
							t.Fatalf("%q: %v", l, err)
						}
						n = append(n, c)
					}
				}
				return n
			}
			for deadline := time.Now().Add(30 * time.Second); len(buckets()) < 3 && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond)
			}
			// SIGINT: the app emits once more and exits, the pipe ends, and
			// the worker flushes and exits.
			if err := web.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			if err := web.Wait(); err != nil {
				t.Errorf("webapp exit: %v", err)
			}
			if err := worker.Wait(); err != nil {
				t.Fatalf("worker exit: %v\n%s", err, stderr.String())
			}
			got := buckets()
			if len(got) < 3 {
				t.Fatalf("%d buckets with http.requests, want at least 3:\n%s", len(got), stdout.String())
			}
			t.Logf("http.requests per bucket: %v", got)
			spiked := slices.Max(got) > steady*3/2
			warned := strings.Contains(stderr.String(), "timer statistics arrived more than once in one bucket")
			if spiked != tc.spike || warned != tc.spike {
				t.Errorf("buckets %v (a full one holds about %d): spike %v, interval warning %v; want %v for both\n%s",
					got, steady, spiked, warned, tc.spike, stderr.String())
			}
			if warned && !strings.Contains(stderr.String(), "were read late") {
				t.Errorf("the interval warning does not name a late read as a cause:\n%s", stderr.String())
			}
		})
	}
}
