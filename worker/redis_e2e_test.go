package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/librato/libratotest"
	"github.com/dynometrics/dynometrics/internal/promtest"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
	"github.com/dynometrics/dynometrics/internal/testproc"
)

// Shared-state end-to-end tests: several worker processes (the built binary)
// share one drain and one real redis-server; the strict fake Librato and a
// real Prometheus receive what they send.

const (
	e2eRes      = 2 * time.Second
	e2eGrace    = time.Second
	e2eHandover = 200 * time.Millisecond
)

// proc is one running worker process.
type proc struct {
	cmd    *exec.Cmd
	url    string                  // drain URL
	stdout *testproc.LimitedBuffer // the self-metric lines (emitter)
	stderr *testproc.LimitedBuffer
	exited chan error
}

// startProc starts the worker binary with env on a free port and waits
// until it says it listens there and answers /health: what answers is then
// this worker, not another test's server that took the port after freePort
// (the worker then exits, and testproc.OnFreePort tries another port).
func startProc(t *testing.T, bin string, env []string) *proc {
	t.Helper()
	var p *proc
	_, err := testproc.OnFreePort(func(port int) error {
		p = &proc{url: fmt.Sprintf("http://127.0.0.1:%d/logs", port), stdout: &testproc.LimitedBuffer{}, stderr: &testproc.LimitedBuffer{}, exited: make(chan error, 1)}
		p.cmd = exec.Command(bin)
		p.cmd.Env = append(os.Environ(), append([]string{"PORT=" + strconv.Itoa(port)}, env...)...)
		p.cmd.Stdout = p.stdout
		p.cmd.Stderr = p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.exited <- p.cmd.Wait() }()
		var taken bool
		waitFor(t, "worker to listen", 10*time.Second, func() bool {
			if taken = strings.Contains(p.stderr.String(), "address already in use"); taken {
				return true
			}
			if !testproc.WorkerListening(p.stderr.String(), port) {
				return false
			}
			r, err := http.Get(strings.TrimSuffix(p.url, "/logs") + "/health")
			if err == nil {
				r.Body.Close()
			}
			return err == nil && r.StatusCode == http.StatusOK
		})
		if taken {
			_ = p.cmd.Process.Kill()
			<-p.exited
			return fmt.Errorf("worker on port %d:\n%s", port, p.stderr)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		p.exited <- nil
		if t.Failed() {
			t.Logf("worker %s stderr:\n%s", p.url, p.stderr.String())
		}
	})
	return p
}

// term sends SIGTERM and waits for a clean exit.
func (p *proc) term(t *testing.T) {
	t.Helper()
	if err := p.termExit(t); err != nil {
		t.Fatalf("worker exit: %v\n%s", err, p.stderr.String())
	}
}

// termExit sends SIGTERM and returns the process' exit error.
func (p *proc) termExit(t *testing.T) error {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		p.exited <- err
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("worker did not exit 20 s after SIGTERM")
	}
	return nil
}

// kill sends SIGKILL and waits.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Kill()
	err := <-p.exited
	p.exited <- err
}

// e2eKey is one series in one bucket.
type e2eKey struct {
	source string
	start  int64
}

// oracle is what was sent, per series and bucket: the count# sum and the
// measure# values.
type oracle struct {
	mu   sync.Mutex
	reqs map[e2eKey]float64
	lats map[e2eKey][]float64
	n    int
}

func newOracle() *oracle {
	return &oracle{reqs: map[e2eKey]float64{}, lats: map[e2eKey][]float64{}}
}

// body returns a drain body of n lines stamped now, from web.1…web.4, and
// records them (call once per distinct Frame-Id).
func (o *oracle) body(rng *rand.Rand, n int) []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	var msgs []string
	for range n {
		now := time.Now().UTC()
		src := fmt.Sprintf("web.%d", 1+rng.IntN(4))
		c, lat := 1+rng.IntN(3), 1+rng.IntN(100)
		msgs = append(msgs, fmt.Sprintf("<190>1 %s host app %s - count#req=%d measure#lat=%dms", syslogTime(now), src, c, lat))
		k := e2eKey{src, now.Truncate(e2eRes).Unix()}
		o.reqs[k] += float64(c)
		o.lats[k] = append(o.lats[k], float64(lat))
		o.n++
	}
	return frame(msgs...)
}

// postBody sends body with a Frame-Id under the test's drain credentials
// and reports whether it was taken (2xx).
func postBody(url, frameID string, body []byte) bool {
	return postAs(url, testUser, testPass, frameID, body)
}

func nearestRank(vals []float64, p int) float64 {
	v := slices.Sorted(slices.Values(vals))
	r := (p*len(v) + 99) / 100
	return v[max(r-1, 0)]
}

// checkLibratoExact checks that the fake received, for every (series,
// bucket) the oracle has, exactly one value of each gauge, equal to the
// whole bucket's aggregate, and nothing else. With identicalResends, a
// gauge received again with identical fields (a resend, see
// docs/shared-state.md) is counted and returned rather than an error.
func checkLibratoExact(t *testing.T, fake *libratotest.Server, o *oracle, identicalResends bool) (resends int) {
	t.Helper()
	return checkLibratoOracles(t, fake, map[string]*oracle{testPrefix + ".": o}, identicalResends)
}

// checkLibratoOracles is checkLibratoExact for several oracles, each of
// the metrics under its name prefix (an app's, in multi-app mode).
func checkLibratoOracles(t *testing.T, fake *libratotest.Server, byPrefix map[string]*oracle, identicalResends bool) (resends int) {
	t.Helper()
	type key struct {
		name, source string
		time         int64
	}
	seen := map[key]libratotest.Measurement{}
	for _, m := range fake.Measurements() {
		k := key{m.Name, m.Source, m.Time}
		if old, dup := seen[k]; dup {
			if identicalResends && fmt.Sprint(old) == fmt.Sprint(m) {
				resends++
				continue
			}
			t.Errorf("received twice: %s source=%s time=%d: %+v then %+v", m.Name, m.Source, m.Time, old, m)
		}
		seen[k] = m
	}
	bad, total := 0, 0
	for p, o := range byPrefix {
		o.mu.Lock()
		for k, sum := range o.reqs {
			total++
			lats := o.lats[k]
			var lsum float64
			for _, v := range lats {
				lsum += v
			}
			checks := []struct {
				name string
				ok   func(m libratotest.Measurement) bool
				want string
			}{
				{p + "req", func(m libratotest.Measurement) bool { return m.HasValue && m.Value == sum }, fmt.Sprint(sum)},
				{p + "lat", func(m libratotest.Measurement) bool {
					return m.Summary && m.Count == int64(len(lats)) && m.Sum == lsum && m.Min == slices.Min(lats) && m.Max == slices.Max(lats)
				}, fmt.Sprintf("count=%d sum=%v", len(lats), lsum)},
				{p + "lat.median", func(m libratotest.Measurement) bool { return m.Value == nearestRank(lats, 50) }, fmt.Sprint(nearestRank(lats, 50))},
				{p + "lat.perc95", func(m libratotest.Measurement) bool { return m.Value == nearestRank(lats, 95) }, fmt.Sprint(nearestRank(lats, 95))},
				{p + "lat.perc99", func(m libratotest.Measurement) bool { return m.Value == nearestRank(lats, 99) }, fmt.Sprint(nearestRank(lats, 99))},
			}
			for _, c := range checks {
				kk := key{c.name, k.source, k.start}
				m, ok := seen[kk]
				delete(seen, kk)
				if !ok || !c.ok(m) {
					if bad++; bad <= 10 {
						t.Errorf("%s source=%s bucket=%d: got %+v (found %v), want %s", c.name, k.source, k.start, m, ok, c.want)
					}
				}
			}
		}
		o.mu.Unlock()
	}
	for k := range seen {
		if bad++; bad <= 20 {
			t.Errorf("unexpected %s source=%s time=%d", k.name, k.source, k.time)
		}
	}
	if bad > 0 {
		t.Errorf("Librato: %d wrong, missing or unexpected values over %d series-buckets", bad, total)
	}
	return resends
}

// checkPrometheus checks, for every source, that the counter at each
// bucket's end is the running sum of every bucket so far (one series across
// workers and restarts, no reset), and the quantiles are the bucket's.
func checkPrometheus(t *testing.T, prom *promtest.Server, o *oracle) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	bySource := map[string][]int64{}
	for k := range o.reqs {
		bySource[k.source] = append(bySource[k.source], k.start)
	}
	name := strings.NewReplacer(".", "_", "-", "_").Replace(testPrefix)
	bad := 0
	for src, starts := range bySource {
		slices.Sort(starts)
		var running float64
		for _, st := range starts {
			k := e2eKey{src, st}
			running += o.reqs[k]
			at := time.Unix(st, 0).Add(e2eRes)
			got := prom.Query(t, fmt.Sprintf(`%s_req_total{source=%q}`, name, src), at)
			if len(got) != 1 || got[0].Value != running {
				if bad++; bad <= 10 {
					t.Errorf("req_total{source=%s} at %s: got %v, want %v", src, at.Format("15:04:05"), got, running)
				}
			}
			// An instant query's result carries the evaluation time, not the
			// sample's: timestamp() gives the sample's, which must be the
			// bucket's end.
			ts := prom.Query(t, fmt.Sprintf(`timestamp(%s_req_total{source=%q})`, name, src), at)
			if len(ts) != 1 || ts[0].Value != float64(at.Unix()) {
				if bad++; bad <= 10 {
					t.Errorf("req_total{source=%s}: sample stamped %v, want the bucket's end %d", src, ts, at.Unix())
				}
			}
			for _, q := range []struct {
				label string
				p     int
			}{{"0.5", 50}, {"0.95", 95}, {"0.99", 99}} {
				got := prom.Query(t, fmt.Sprintf(`%s_lat_seconds{source=%q,quantile=%q}`, name, src, q.label), at)
				if want := nearestRank(o.lats[k], q.p) / 1000; len(got) != 1 || math.Abs(got[0].Value-want) > 1e-12 {
					if bad++; bad <= 10 {
						t.Errorf("lat_seconds{source=%s,quantile=%s} at %s: got %v, want %v", src, q.label, at.Format("15:04:05"), got, want)
					}
				}
			}
		}
	}
	// One series per source: no per-worker label, no second series.
	all := prom.Query(t, fmt.Sprintf(`count(%s_req_total)`, name), time.Now())
	if len(all) != 1 || int(all[0].Value) != len(bySource) {
		t.Errorf("count(req_total) = %v, want %d", all, len(bySource))
	}
}

type sharedEnv struct {
	bin   string
	redis *redistest.Server
	fake  *libratotest.Server
	prom  *promtest.Server
	env   []string
}

func newSharedEnv(t *testing.T, extra ...string) *sharedEnv {
	t.Helper()
	e := &sharedEnv{bin: buildBinary(t, "."), redis: redistest.Start(t), prom: promtest.Start(t)}
	e.fake = libratotest.New(t, libratotest.Options{User: testLUser, Token: testLToken})
	e.env = append([]string{
		"DRAIN_USER=" + testUser, "DRAIN_PASSWORD=" + testPass, "METRICS_PREFIX=" + testPrefix,
		"METRICS_RESOLUTION=" + e2eRes.String(), "METRICS_GRACE=" + e2eGrace.String(),
		"REDIS_URL=" + e.redis.URL, "REDIS_HANDOVER=" + e2eHandover.String(), "REDIS_PARTITIONS=4",
		"LIBRATO_USER=" + testLUser, "LIBRATO_TOKEN=" + testLToken, "LIBRATO_URL=" + e.fake.URL,
		"REMOTE_WRITE_URL=" + e.prom.WriteURL, "SHUTDOWN_TIMEOUT=10s", "EMITTER_INTERVAL=1h",
	}, extra...)
	return e
}

// sender posts bodies of 10 lines every 20 ms to a random live worker until
// stop is closed; every 7th body is posted again, with the same Frame-Id, to
// another worker (a Logplex retry landing elsewhere) when retryElsewhere()
// says so, else to the same one.
type sender struct {
	mu    sync.Mutex
	live  []*proc
	o     *oracle
	stop  chan struct{}
	done  chan struct{}
	fails int
}

func (s *sender) set(live ...*proc) {
	s.mu.Lock()
	s.live = live
	s.mu.Unlock()
}

func (s *sender) run(retryElsewhere func() bool) {
	defer close(s.done)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; ; i++ {
		select {
		case <-s.stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		s.mu.Lock()
		live := slices.Clone(s.live)
		s.mu.Unlock()
		if len(live) == 0 {
			continue
		}
		id := fmt.Sprintf("frame-%06d", i)
		body := s.o.body(rng, 10)
		first := rng.IntN(len(live))
		// A refused POST is retried, as Logplex does, until some worker takes it.
		for try := 0; !postBody(live[(first+try)%len(live)].url, id, body); try++ {
			s.mu.Lock()
			s.fails++
			live = slices.Clone(s.live)
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if len(live) == 0 {
				return
			}
		}
		if i%7 == 0 {
			to := live[first%len(live)]
			if retryElsewhere() && len(live) > 1 {
				to = live[(first+1)%len(live)]
			}
			postBody(to.url, id, body) // a duplicate: counted once
		}
	}
}

// waitDelivered waits until the fake has every (series, bucket) the oracle
// has and then for the flushes that could still follow.
func waitDelivered(t *testing.T, fake *libratotest.Server, o *oracle, d time.Duration) {
	t.Helper()
	o.mu.Lock()
	want := len(o.reqs) * 5
	o.mu.Unlock()
	waitFor(t, fmt.Sprintf("%d measurements at the fake Librato", want), d, func() bool { return len(fake.Measurements()) >= want })
	time.Sleep(e2eRes) // anything sent twice would arrive now
}

// TestSharedStateRestartAndRetries: two workers share a drain and Redis; one
// is restarted (SIGTERM, new process) in the middle of a bucket; some POSTs
// are retried with the same Frame-Id on the other worker. Librato gets every
// (series, bucket) exactly once with the whole bucket's aggregate; Prometheus
// shows one continuous counter per source and the right medians.
func TestSharedStateRestartAndRetries(t *testing.T) {
	t.Parallel() // waits on the clock, not the CPU: overlaps with the other long end-to-end tests
	e := newSharedEnv(t)
	a := startProc(t, e.bin, e.env)
	b := startProc(t, e.bin, e.env)
	s := &sender{o: newOracle(), stop: make(chan struct{}), done: make(chan struct{})}
	s.set(a, b)
	go s.run(func() bool { return true })

	// Restart a in the middle of a bucket.
	time.Sleep(time.Until(time.Now().Truncate(e2eRes).Add(2*e2eRes + e2eRes/2)))
	s.set(b)
	a.term(t)
	a2 := startProc(t, e.bin, e.env)
	s.set(a2, b)
	time.Sleep(3 * e2eRes)
	close(s.stop)
	<-s.done

	waitDelivered(t, e.fake, s.o, 20*time.Second)
	a2.term(t)
	b.term(t)
	checkLibratoExact(t, e.fake, s.o, false)
	checkPrometheus(t, e.prom, s.o)
	for _, p := range []*proc{a, a2, b} {
		if out := p.stderr.String(); strings.Contains(out, testPass) || strings.Contains(out, testLToken) || strings.Contains(out, "level=ERROR") {
			t.Errorf("worker log has an error or a secret:\n%s", out)
		}
	}
	t.Logf("%d lines in %d series-buckets; %d refused POSTs retried", s.o.n, len(s.o.reqs), s.fails)
}

// TestSharedStateRedisPaused: Redis stops answering for 20 s in the middle
// (SIGSTOP: connections hang), longer than the default REDIS_LEASE_TTL
// (15 s: every lease lapses) and far shorter than REDIS_FALLBACK_AFTER; the
// workers keep accepting and aggregating, and once it answers again every
// bucket is delivered whole, once.
// Retries go to the same worker here: while Redis is away only the local
// window de-duplicates Frame-Ids. A bucket whose delivery a stalled worker
// could not record may be resent with identical values (at least once);
// those are counted, any differing second value fails.
func TestSharedStateRedisPaused(t *testing.T) {
	t.Parallel() // waits on the clock, not the CPU: overlaps with the other long end-to-end tests
	e := newSharedEnv(t)
	a := startProc(t, e.bin, e.env)
	b := startProc(t, e.bin, e.env)
	s := &sender{o: newOracle(), stop: make(chan struct{}), done: make(chan struct{})}
	s.set(a, b)
	go s.run(func() bool { return false })
	time.Sleep(2 * e2eRes)
	if err := e.redis.Pause(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Second)
	if err := e.redis.Resume(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * e2eRes)
	close(s.stop)
	<-s.done

	resumed := time.Now()
	waitDelivered(t, e.fake, s.o, 30*time.Second)
	t.Logf("delivered %v after the sender stopped", time.Since(resumed).Round(time.Millisecond))
	a.term(t)
	b.term(t)
	resends := checkLibratoExact(t, e.fake, s.o, true)
	checkPrometheus(t, e.prom, s.o)
	if s.fails != 0 {
		t.Errorf("%d POSTs refused while Redis was paused", s.fails)
	}
	t.Logf("%d lines in %d series-buckets; %d identical gauges resent", s.o.n, len(s.o.reqs), resends)
}

// TestSharedStateKill9LossBound: a worker killed with SIGKILL loses at most
// what it received since its last hand-over (REDIS_HANDOVER), nothing
// earlier; the other worker sends everything else, never more than was sent.
func TestSharedStateKill9LossBound(t *testing.T) {
	// The killed worker's leases (balanced: half of them) lapse after
	// REDIS_LEASE_TTL; b then flushes its buckets too.
	const ttl = 2 * time.Second
	e := newSharedEnv(t, "REDIS_LEASE_TTL="+ttl.String())
	b := startProc(t, e.bin, e.env) // first: it takes every partition's lease
	waitFor(t, "b to lead", 5*time.Second, func() bool {
		v, _ := e.redis.Do("EXISTS", "dm:{p3}:lease")
		return v == "1"
	})
	a := startProc(t, e.bin, e.env)
	s := &sender{o: newOracle(), stop: make(chan struct{}), done: make(chan struct{})}
	s.set(a)
	go s.run(func() bool { return false })
	time.Sleep(3 * time.Second)
	s.set()
	a.kill(t)
	close(s.stop)
	<-s.done

	// Delivered by b: every bucket that had anything handed over.
	time.Sleep(e2eRes + e2eGrace + ttl + 2*time.Second)
	b.term(t)
	got := map[int64]float64{}
	for _, m := range e.fake.Measurements() {
		if m.Name == testPrefix+".req" {
			got[m.Time] += m.Value
		}
	}
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	sent := map[int64]float64{}
	var total, delivered float64
	for k, v := range s.o.reqs {
		sent[k.start] += v
		total += v
	}
	for start, v := range got {
		delivered += v
		if v > sent[start] {
			t.Errorf("bucket %d: delivered %v > sent %v", start, v, sent[start])
		}
	}
	lost := total - delivered
	// The bound: what the sender posted within one hand-over interval
	// (plus 300 ms for the body queue and scheduling) before the kill.
	rate := total / 3 // count# units per second
	bound := rate * (e2eHandover + 300*time.Millisecond).Seconds()
	t.Logf("kill -9 with REDIS_HANDOVER=%s: lost %.0f of %.0f count units (%.0f ms of traffic at %.0f/s); bound %.0f",
		e2eHandover, lost, total, 1000*lost/rate, rate, bound)
	if lost > bound {
		t.Errorf("lost %.0f > bound %.0f", lost, bound)
	}
}

// TestRestartWithoutRedisPrometheusAcceptsBoth: a single worker without
// Redis restarted in the middle of a bucket sends that bucket twice, as two
// partial values: the first stamped when it was cut, the second at the
// bucket's end. Prometheus must accept both (before, both carried the end
// and the second request was refused as a duplicate sample). The restart
// must fit in one bucket: the bucket is 10 s wide, and a restart that takes
// longer fails the test rather than skipping it.
func TestRestartWithoutRedisPrometheusAcceptsBoth(t *testing.T) {
	t.Parallel() // waits on the clock, not the CPU: overlaps with the other long end-to-end tests
	bin := buildBinary(t, ".")
	prom := promtest.Start(t)
	const res = 10 * time.Second
	env := []string{"DRAIN_USER=" + testUser, "DRAIN_PASSWORD=" + testPass,
		"METRICS_RESOLUTION=" + res.String(), "METRICS_GRACE=500ms",
		"REMOTE_WRITE_URL=" + prom.WriteURL, "SHUTDOWN_TIMEOUT=10s", "EMITTER_INTERVAL=1h"}
	start := time.Now().Truncate(res).Add(res)
	time.Sleep(time.Until(start.Add(200 * time.Millisecond)))
	line := func(n int) []byte {
		var msgs []string
		for range n {
			msgs = append(msgs, fmt.Sprintf("<190>1 %s host app web.1 - count#req=1", syslogTime(time.Now())))
		}
		return frame(msgs...)
	}
	a := startProc(t, bin, env)
	if !postBody(a.url, "f1", line(3)) {
		t.Fatal("POST to a refused")
	}
	a.term(t)
	cut := time.Now()
	a2 := startProc(t, bin, env)
	if !postBody(a2.url, "f2", line(5)) {
		t.Fatal("POST to a2 refused")
	}
	if took := time.Since(start); took >= res {
		t.Fatalf("starting, stopping and restarting the worker took %s, more than the %s bucket it must fit in", took.Round(time.Millisecond), res)
	}
	time.Sleep(time.Until(start.Add(res + 2*time.Second)))
	a2.term(t)
	for _, p := range []*proc{a, a2} {
		if out := p.stderr.String(); strings.Contains(out, "dropped") || strings.Contains(out, "refused") {
			t.Errorf("a batch was dropped:\n%s", out)
		}
	}
	end := start.Add(res)
	got := prom.Query(t, `req_total{source="web.1"}`, end)
	if len(got) != 1 || got[0].Value != 5 || !got[0].Time.Equal(end) {
		t.Errorf("at the bucket's end: %v, want the second worker's 5", got)
	}
	got = prom.Query(t, `req_total{source="web.1"}`, cut)
	if len(got) != 1 || got[0].Value != 3 || !got[0].Time.After(start) || !got[0].Time.Before(cut) {
		t.Errorf("at the cut (%s): %v, want the first worker's 3 stamped before it", cut.Format("15:04:05.000"), got)
	}
}

// TestSharedStateUnsentAtSIGTERMSentByNextWorker: a worker whose Librato is
// unreachable gets SIGTERM with flushed buckets still undelivered; they stay
// in Redis and the next worker sends them, whole, once.
func TestSharedStateUnsentAtSIGTERMSentByNextWorker(t *testing.T) {
	t.Parallel() // waits on the clock, not the CPU: overlaps with the other long end-to-end tests
	e := newSharedEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	envDown := append(slices.Clone(e.env), "LIBRATO_URL="+dead, "SHUTDOWN_TIMEOUT=2s")
	a := startProc(t, e.bin, envDown)
	o := newOracle()
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 20 {
		if !postBody(a.url, fmt.Sprintf("u%d", i), o.body(rng, 10)) {
			t.Fatal("POST refused")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Every bucket due and flushed into a's queue, none delivered.
	time.Sleep(e2eRes + e2eGrace + 2*time.Second)
	if err := a.termExit(t); err == nil || !strings.Contains(a.stderr.String(), "undelivered") {
		t.Fatalf("a exited with %v; want an error naming the undelivered batches:\n%s", err, a.stderr.String())
	}
	if n := len(e.fake.Measurements()); n != 0 {
		t.Fatalf("the fake got %d measurements from a", n)
	}
	if !strings.Contains(a.stderr.String(), "batch dropped") {
		t.Fatalf("a dropped nothing at SIGTERM:\n%s", a.stderr.String())
	}
	b := startProc(t, e.bin, e.env)
	waitDelivered(t, e.fake, o, 20*time.Second)
	b.term(t)
	checkLibratoExact(t, e.fake, o, false)
}
