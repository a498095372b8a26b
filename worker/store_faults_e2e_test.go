package main

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/librato/libratotest"
	"github.com/dynometrics/dynometrics/internal/otlpout/otlptest"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
)

// Shared-state fault tests (issue 17): the built worker binary against a
// real redis-server that misbehaves, a strict fake Librato and an OTLP
// receiver in delta temporality, where every duplicate shows as a doubled
// sum. Both are compared, per (series, bucket), with the oracle of what was
// answered 2xx.

// faultEnv is a redis-server, the fake Librato and the OTLP receiver, and
// the environment of workers that use them (REDIS_URL is set by the test).
type faultEnv struct {
	bin   string
	redis *redistest.Server
	fake  *libratotest.Server
	otlp  *otlptest.Receiver
	env   []string
}

func newFaultEnv(t *testing.T, extra ...string) *faultEnv {
	t.Helper()
	e := &faultEnv{bin: buildBinary(t, "."), redis: redistest.Start(t), otlp: otlptest.New(t, otlptest.Options{})}
	e.fake = libratotest.New(t, libratotest.Options{User: testLUser, Token: testLToken})
	e.env = append([]string{
		"DRAIN_USER=" + testUser, "DRAIN_PASSWORD=" + testPass, "METRICS_PREFIX=" + testPrefix,
		"METRICS_RESOLUTION=" + e2eRes.String(), "METRICS_GRACE=" + e2eGrace.String(),
		"REDIS_HANDOVER=" + e2eHandover.String(), "REDIS_PARTITIONS=4",
		"LIBRATO_USER=" + testLUser, "LIBRATO_TOKEN=" + testLToken, "LIBRATO_URL=" + e.fake.URL,
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + e.otlp.URL, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta",
		"SHUTDOWN_TIMEOUT=10s", "EMITTER_INTERVAL=1h",
	}, extra...)
	return e
}

// checkOTLPDelta checks that the OTLP receiver got, for every (source,
// bucket) of the oracle, delta sums of the req counter adding up to exactly
// what was sent (a bucket delivered twice shows as a doubled sum), and no
// req point for anything else. It returns the buckets whose sum was a
// multiple (2×, 3×…) of the oracle's.
func checkOTLPDelta(t *testing.T, r *otlptest.Receiver, o *oracle) (doubled int) {
	t.Helper()
	got := map[e2eKey]float64{}
	for _, p := range r.Points() {
		if p.Name != testPrefix+".req" {
			continue
		}
		if p.Temporality != "delta" {
			t.Errorf("req point %s in %q temporality, want delta", p.Key(), p.Temporality)
		}
		got[e2eKey{p.Attrs["source"], p.Time.Add(-e2eRes).Unix()}] += p.Value
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	bad := 0
	for k, want := range o.reqs {
		g := got[k]
		delete(got, k)
		if g == want {
			continue
		}
		if g > want && math.Mod(g, want) == 0 {
			doubled++
		}
		if bad++; bad <= 10 {
			t.Errorf("OTLP req{source=%s} bucket %d: delta sum %v, want %v", k.source, k.start, g, want)
		}
	}
	for k, v := range got {
		if bad++; bad <= 20 {
			t.Errorf("OTLP req{source=%s} bucket %d: %v, nothing was sent", k.source, k.start, v)
		}
	}
	if bad > 0 {
		t.Errorf("OTLP: %d wrong, missing or unexpected sums over %d series-buckets", bad, len(o.reqs))
	}
	return doubled
}

// waitBoth waits until the fake Librato and the OTLP receiver have every
// (series, bucket) of the oracle, or d has passed (the checks that follow
// then say what is missing), and then for anything sent twice.
func waitBoth(t *testing.T, e *faultEnv, o *oracle, d time.Duration) {
	t.Helper()
	o.mu.Lock()
	want := len(o.reqs)
	o.mu.Unlock()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		n := 0
		for _, p := range e.otlp.Points() {
			if p.Name == testPrefix+".req" {
				n++
			}
		}
		if n >= want && len(e.fake.Measurements()) >= 5*want {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(e2eRes) // anything sent twice would arrive now
}

// deliveredLines is how many of the oracle's req units reached Librato,
// for the log: "delivered X of Y".
func deliveredLines(fake *libratotest.Server, o *oracle) (got, sent float64) {
	for _, m := range fake.Measurements() {
		if m.Name == testPrefix+".req" {
			got += m.Value
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, v := range o.reqs {
		sent += v
	}
	return got, sent
}

// TestSharedStateWrongRedisPassword: REDIS_URL carries a password Redis
// refuses (WRONGPASS) from the start. The Frame-Id check fails (it used to
// say "already seen": every body was answered 204 and dropped); the bodies
// are kept, the hand-overs fail, and after REDIS_FALLBACK_AFTER the worker
// sends every bucket itself, whole, once. The reason is logged.
func TestSharedStateWrongRedisPassword(t *testing.T) {
	t.Parallel() // waits on the clock, not the CPU
	e := newFaultEnv(t, "REDIS_FALLBACK_AFTER=1s")
	if err := e.redis.RequirePass("right"); err != nil {
		t.Fatal(err)
	}
	a := startProc(t, e.bin, append(e.env, "REDIS_URL=redis://:wrong@"+e.redis.Addr+"/0"))
	s := &sender{o: newOracle(), stop: make(chan struct{}), done: make(chan struct{})}
	s.set(a)
	go s.run(func() bool { return false })
	time.Sleep(3 * e2eRes)
	close(s.stop)
	<-s.done
	waitBoth(t, e, s.o, 20*time.Second)
	a.term(t)
	checkLibratoExact(t, e.fake, s.o, false)
	checkOTLPDelta(t, e.otlp, s.o)
	out := a.stderr.String()
	if !strings.Contains(out, "reason=auth") || strings.Contains(out, "wrong@") {
		t.Errorf("log does not name the reason (auth), or leaks the password:\n%s", out)
	}
	got, sent := deliveredLines(e.fake, s.o)
	t.Logf("%d lines in %d series-buckets, all answered 2xx; Librato got %v of %v req units", s.o.n, len(s.o.reqs), got, sent)
}

// TestSharedStatePasswordRotated: two workers; mid-run the Redis password
// changes and every connection is closed (a provider's rotation), and a few
// seconds later the old password is back. Bodies taken meanwhile are kept
// (they used to be answered 204 and dropped as duplicates), and once Redis
// takes the workers again every bucket is delivered through it whole, once.
func TestSharedStatePasswordRotated(t *testing.T) {
	t.Parallel() // waits on the clock, not the CPU
	e := newFaultEnv(t, "REDIS_FALLBACK_AFTER=1m")
	if err := e.redis.RequirePass("p1"); err != nil {
		t.Fatal(err)
	}
	env := append(e.env, "REDIS_URL=redis://:p1@"+e.redis.Addr+"/0")
	a := startProc(t, e.bin, env)
	b := startProc(t, e.bin, env)
	s := &sender{o: newOracle(), stop: make(chan struct{}), done: make(chan struct{})}
	s.set(a, b)
	go s.run(func() bool { return false }) // while Redis refuses, only the local window de-duplicates
	time.Sleep(e2eRes + e2eRes/2)
	if err := e.redis.RequirePass("p2"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	if err := e.redis.RequirePass("p1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * e2eRes)
	close(s.stop)
	<-s.done
	waitBoth(t, e, s.o, 30*time.Second)
	a.term(t)
	b.term(t)
	checkLibratoExact(t, e.fake, s.o, false)
	if d := checkOTLPDelta(t, e.otlp, s.o); d != 0 {
		t.Errorf("%d series-buckets delivered more than once", d)
	}
	if out := a.stderr.String() + b.stderr.String(); !strings.Contains(out, "reason=auth") {
		t.Errorf("no worker logged the reason (auth):\n%s", out)
	}
	got, sent := deliveredLines(e.fake, s.o)
	t.Logf("%d lines in %d series-buckets, all answered 2xx; %d POSTs refused and retried; Librato got %v of %v req units",
		s.o.n, len(s.o.reqs), s.fails, got, sent)
}
