package main

import (
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/librato/libratotest"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
)

// TestSharedStateRedisCluster: two worker processes (the built binary) with
// REDIS_CLUSTER=true share a real three-node Redis Cluster; one is
// restarted mid-run and some POSTs are retried on the other worker. The
// strict fake Librato gets every (series, bucket) exactly once, whole, and
// neither worker logged a Redis error (a command outside its slot would be
// answered MOVED or CROSSSLOT and counted).
func TestSharedStateRedisCluster(t *testing.T) {
	t.Parallel() // waits on the clock, not the CPU
	bin := buildBinary(t, ".")
	c := redistest.StartCluster(t)
	fake := libratotest.New(t, libratotest.Options{User: testLUser, Token: testLToken})
	env := []string{
		"DRAIN_USER=" + testUser, "DRAIN_PASSWORD=" + testPass, "METRICS_PREFIX=" + testPrefix,
		"METRICS_RESOLUTION=" + e2eRes.String(), "METRICS_GRACE=" + e2eGrace.String(),
		"REDIS_URL=" + c.URL, "REDIS_CLUSTER=true", "REDIS_HANDOVER=" + e2eHandover.String(), "REDIS_PARTITIONS=8",
		"LIBRATO_USER=" + testLUser, "LIBRATO_TOKEN=" + testLToken, "LIBRATO_URL=" + fake.URL,
		"SHUTDOWN_TIMEOUT=10s", "EMITTER_INTERVAL=1h",
	}
	a := startProc(t, bin, env)
	b := startProc(t, bin, env)
	s := &sender{o: newOracle(), stop: make(chan struct{}), done: make(chan struct{})}
	s.set(a, b)
	go s.run(func() bool { return true })
	time.Sleep(time.Until(time.Now().Truncate(e2eRes).Add(2*e2eRes + e2eRes/2)))
	s.set(b)
	a.term(t)
	a2 := startProc(t, bin, env)
	s.set(a2, b)
	time.Sleep(3 * e2eRes)
	close(s.stop)
	<-s.done

	waitDelivered(t, fake, s.o, 20*time.Second)
	a2.term(t)
	b.term(t)
	checkLibratoExact(t, fake, s.o, false)
	for _, p := range []*proc{a, a2, b} {
		out := p.stderr.String()
		for _, bad := range []string{"level=ERROR", "MOVED", "CROSSSLOT", "cannot", testPass} {
			if strings.Contains(out, bad) {
				t.Errorf("worker log has %q:\n%s", bad, out)
			}
		}
	}
	t.Logf("%d lines in %d series-buckets over a 3-node cluster; %d refused POSTs retried", s.o.n, len(s.o.reqs), s.fails)
}
