package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/librato/libratotest"
	"github.com/dynometrics/dynometrics/internal/testproc"
)

// TestAppBurstLeavesOtherAppWhole is issue 19's "one app's 150,000-name
// burst leaves the other app's known series whole", on the built binary in
// multi-app mode at the default series bound (100,000 per bucket).
//
// steady logs 5 counters and 5 gauges from web.1 and web.2 for a bucket,
// which is flushed, so its series are known. In the next bucket flood posts
// 150,000 new names, each dyno of 1,000 logging 150 of them (the per-source
// share alone cannot hold that back), while steady posts the same corpus
// before, during and after the burst, plus a dyno that just started (web.3,
// new series). Every steady series arrives at the strict fake Librato with
// the exact value computed here from what was sent; flood's refusals are
// counted in its own self-metrics (worker.app.flood.*), and steady's show
// no drop at all.
func TestAppBurstLeavesOtherAppWhole(t *testing.T) {
	t.Parallel()
	fake := libratotest.New(t, libratotest.Options{User: testLUser, Token: testLToken})
	bin := buildBinary(t, ".")
	port := strconv.Itoa(freePort(t))
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PORT="+port, "DRAIN_USER=", "DRAIN_PASSWORD=", "DRAIN_SECRET="+appSecretNew,
		"METRICS_PREFIX=us-east.prod.{app}", "METRICS_GRACE=1s", "EMITTER_INTERVAL=1h",
		"LIBRATO_USER="+testLUser, "LIBRATO_TOKEN="+testLToken, "LIBRATO_URL="+fake.URL, "LIBRATO_API=measurements")
	stdout, stderr := &testproc.LimitedBuffer{}, &testproc.LimitedBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	base := "http://127.0.0.1:" + port
	waitFor(t, "worker to listen", 10*time.Second, func() bool {
		r, err := http.Get(base + "/health")
		if err == nil {
			r.Body.Close()
		}
		return err == nil
	})
	keys := keyring(t, appSecretNew)
	url := base + "/logs"
	var frameID atomicCounter
	// post posts msgs as app, retrying a 503 as Logplex does (sooner, to
	// keep the test short), and returns how many 503s it got.
	post := func(app string, msgs []string) int {
		refused := 0
		id := app + "-" + strconv.Itoa(frameID.next())
		for {
			switch code := postApp(t, url, app, keys.Token(app), id, frame(msgs...)); code {
			case http.StatusNoContent:
				return refused
			case http.StatusServiceUnavailable:
				refused++
				time.Sleep(20 * time.Millisecond)
			default:
				t.Errorf("POST as %s: %d", app, code)
				return refused
			}
		}
	}

	// The independent reference: steady's sums and last values per series,
	// from what is sent.
	type key struct{ name, dyno string }
	want := map[int64]map[key]float64{} // by bucket start
	steadyLines := 0
	steady := func(at time.Time, dynos ...string) []string {
		var msgs []string
		bucket := at.Truncate(time.Minute).Unix()
		if want[bucket] == nil {
			want[bucket] = map[key]float64{}
		}
		for d, dyno := range dynos {
			var pairs []string
			for m := range 5 {
				c, g := float64(m+d+1), float64(at.Second())+float64(m)/8
				pairs = append(pairs, fmt.Sprintf("count#steady.c%d=%g sample#steady.g%d=%g", m, c, m, g))
				want[bucket][key{"us-east.prod.steady.steady.c" + strconv.Itoa(m), dyno}] += c
				want[bucket][key{"us-east.prod.steady.steady.g" + strconv.Itoa(m), dyno}] = g // later lines come later
			}
			msgs = append(msgs, fmt.Sprintf("<190>1 %s host app %s - %s", syslogTime(at), dyno, strings.Join(pairs, " ")))
			steadyLines++
		}
		return msgs
	}

	// Bucket 0 (last minute): steady's series become known once it is
	// flushed (its deadline is a second after the minute's end).
	now := time.Now().UTC()
	b0 := now.Truncate(time.Minute).Add(-time.Minute)
	for s := 5; s < 60; s += 20 {
		if n := post("steady", steady(b0.Add(time.Duration(s)*time.Second), "web.1", "web.2")); n != 0 {
			t.Errorf("steady refused %d times before the burst", n)
		}
	}
	waitFor(t, "steady's first bucket at Librato", 10*time.Second, func() bool {
		for _, m := range fake.Measurements() {
			if m.Time == b0.Unix() {
				return true
			}
		}
		return false
	})

	// Bucket 1: the next minute (ahead of the clock, within MaxFuture, so
	// that it stays open throughout); flushed whole at shutdown.
	b1 := b0.Add(2 * time.Minute)
	var wg sync.WaitGroup
	var floodRefused atomicCounter
	const names, perBody, dynos = 150_000, 1000, 1000
	bodies := make(chan []string, names/perBody)
	for i := 0; i < names; i += perBody {
		msgs := make([]string, 0, perBody)
		for j := i; j < i+perBody; j++ {
			msgs = append(msgs, fmt.Sprintf("<190>1 %s host app web.%d - count#burst.%d=1", syslogTime(b1.Add(time.Duration(1+j%50)*time.Second)), 1+j%dynos, j))
		}
		bodies <- msgs
	}
	close(bodies)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for msgs := range bodies {
				floodRefused.add(post("flood", msgs))
			}
		}()
	}
	steadyRefused := post("steady", steady(b1.Add(5*time.Second), "web.1", "web.2"))
	for len(bodies) > names/perBody/2 {
		time.Sleep(10 * time.Millisecond)
	}
	steadyRefused += post("steady", steady(b1.Add(25*time.Second), "web.1", "web.2"))
	wg.Wait()
	steadyRefused += post("steady", steady(b1.Add(45*time.Second), "web.1", "web.2", "web.3"))
	if steadyRefused != 0 {
		t.Errorf("steady's POSTs refused %d times", steadyRefused)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("worker exit: %v\n%s", err, stderr.String())
	}

	got := map[int64]map[key]float64{}
	floodSeries := 0
	for _, m := range fake.Measurements() {
		switch m.Tags["app"] {
		case "flood":
			floodSeries++
		case "steady":
			if got[m.Time] == nil {
				got[m.Time] = map[key]float64{}
			}
			got[m.Time][key{m.Name, m.Tags["dyno"]}] = m.Value
		default:
			t.Fatalf("a measurement of app %q: %+v", m.Tags["app"], m)
		}
	}
	for _, b := range []int64{b0.Unix(), b1.Unix()} {
		if len(got[b]) != len(want[b]) {
			t.Errorf("bucket %s: steady has %d series at Librato, want %d", time.Unix(b, 0).UTC(), len(got[b]), len(want[b]))
		}
		for k, w := range want[b] {
			if g, ok := got[b][k]; !ok || g != w {
				t.Errorf("bucket %s: steady %s/%s = %v (sent: %v), want %v", time.Unix(b, 0).UTC(), k.name, k.dyno, g, ok, w)
			}
		}
	}
	if len(want[b1.Unix()]) != 2*10+10 {
		t.Fatalf("reference has %d series in the burst's bucket, want 30", len(want[b1.Unix()]))
	}

	// The self-metrics' final emission: cumulative counts.
	self := counts(stdout.String())
	drops := 0
	for name, v := range self {
		if strings.HasPrefix(name, "worker.app.flood.dropped.") {
			drops += v
		}
		if strings.HasPrefix(name, "worker.app.steady.dropped.") && v != 0 {
			t.Errorf("%s = %d, want 0", name, v)
		}
	}
	if floodSeries+drops != names || self["worker.app.flood.dropped.app_share"] == 0 {
		t.Errorf("flood: %d series delivered + %d drops (%d for its app share), want %d in all, some for its share",
			floodSeries, drops, self["worker.app.flood.dropped.app_share"], names)
	}
	for name, w := range map[string]int{
		"worker.app.flood.lines": names, "worker.app.flood.measurements": names,
		"worker.app.flood.refused": floodRefused.load(), "worker.drain.app_share": floodRefused.load(),
		"worker.app.steady.lines": steadyLines, "worker.app.steady.measurements": 10 * steadyLines,
	} {
		if self[name] != w {
			t.Errorf("%s = %d, want %d", name, self[name], w)
		}
	}
	if log := stderr.String(); !strings.Contains(log, "new series of an app refused beyond its share") || !strings.Contains(log, "app=flood") ||
		strings.Contains(log, "app=steady") {
		t.Errorf("the worker's log does not name flood's refusals (or names steady):\n%s", log)
	}
	t.Logf("flood: %d of %d names delivered, drops %d (app_share %d); its POSTs refused %d times",
		floodSeries, names, drops, self["worker.app.flood.dropped.app_share"], floodRefused.load())
}

// counts returns the count# values of the self-metrics printed in out.
func counts(out string) map[string]int {
	m := map[string]int{}
	for _, f := range regexp.MustCompile(`count#([\w.]+)=(\d+)`).FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(f[2])
		m[f[1]] += n
	}
	return m
}

// atomicCounter is a counter for goroutines of a test.
type atomicCounter struct {
	mu sync.Mutex
	n  int
}

func (c *atomicCounter) add(n int) { c.mu.Lock(); c.n += n; c.mu.Unlock() }
func (c *atomicCounter) next() int { c.mu.Lock(); defer c.mu.Unlock(); c.n++; return c.n }
func (c *atomicCounter) load() int { c.mu.Lock(); defer c.mu.Unlock(); return c.n }
