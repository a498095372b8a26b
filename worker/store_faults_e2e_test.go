package main

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
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
// req point for anything else. A bucket whose start is in resent may be
// exactly doubled (a send whose outcome could not be known, counted and
// logged by the worker that resent it); it returns how many were.
func checkOTLPDelta(t *testing.T, r *otlptest.Receiver, o *oracle, resent map[int64]bool) (doubled int) {
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
		if g == 2*want && resent[k.start] {
			doubled++
			continue
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
	checkOTLPDelta(t, e.otlp, s.o, nil)
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
	checkOTLPDelta(t, e.otlp, s.o, nil)
	if out := a.stderr.String() + b.stderr.String(); !strings.Contains(out, "reason=auth") {
		t.Errorf("no worker logged the reason (auth):\n%s", out)
	}
	got, sent := deliveredLines(e.fake, s.o)
	t.Logf("%d lines in %d series-buckets, all answered 2xx; %d POSTs refused and retried; Librato got %v of %v req units",
		s.o.n, len(s.o.reqs), s.fails, got, sent)
}

// logged returns the values of attr in the log lines of out that contain
// msg (slog's text format: attr=value).
func logged(out, msg, attr string) []string {
	re := regexp.MustCompile(`\b` + regexp.QuoteMeta(attr) + `=("[^"]*"|\S+)`)
	var vals []string
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, msg) {
			continue
		}
		if m := re.FindStringSubmatch(line); m != nil {
			vals = append(vals, strings.Trim(m[1], `"`))
		}
	}
	return vals
}

// resentBuckets returns the bucket starts the workers logged as resent
// with an unknown previous outcome.
func resentBuckets(procs ...*proc) map[int64]bool {
	out := map[int64]bool{}
	for _, p := range procs {
		for _, v := range logged(p.stderr.String(), "resending a bucket another worker handed", "bucket_unix") {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				out[n] = true
			}
		}
	}
	return out
}

// pointsFrom counts the req points the OTLP receiver got from the worker
// whose OTEL_RESOURCE_ATTRIBUTES say worker=name.
func pointsFrom(r *otlptest.Receiver, name string) int {
	n := 0
	for _, p := range r.Points() {
		if p.Resource["worker"] == name {
			n++
		}
	}
	return n
}

// startLeader starts a worker and waits until it holds every partition's
// lease, then starts a second one.
func startLeader(t *testing.T, e *faultEnv) (a, b *proc) {
	t.Helper()
	env := append(slices.Clone(e.env), "REDIS_URL="+e.redis.URL)
	a = startProc(t, e.bin, append(slices.Clone(env), "OTEL_RESOURCE_ATTRIBUTES=worker=a"))
	waitFor(t, "a to lead every partition", 5*time.Second, func() bool {
		for p := range 4 {
			if v, _ := e.redis.Do("EXISTS", fmt.Sprintf("dm:{p%d}:lease", p)); v != "1" {
				return false
			}
		}
		return true
	})
	b = startProc(t, e.bin, append(slices.Clone(env), "OTEL_RESOURCE_ATTRIBUTES=worker=b"))
	return a, b
}

// TestSharedStateHolderFrozenMidDelivery: the lease holder (a, which takes
// no traffic: it only flushes) is stopped (SIGSTOP) for longer than its
// lease while its OTLP request for a bucket is in flight (the receiver
// holds it 4 s, then takes it), and resumed. b takes the partitions over.
// Only the request whose outcome b cannot know is sent again (exactly
// doubled in OTLP delta, identical in Librato, logged by b); after SIGCONT
// a sends nothing b sent (its queued batches are withdrawn, its records
// fenced; with balanced leases it flushes the partitions that move back to
// it afterwards). Before fencing, a went on sending what b had sent.
func TestSharedStateHolderFrozenMidDelivery(t *testing.T) {
	t.Parallel() // waits on the clock, not the CPU
	e := newFaultEnv(t, "REDIS_LEASE_TTL=2s", "REDIS_FALLBACK_AFTER=1m")
	a, b := startLeader(t, e)
	s := &sender{o: newOracle(), stop: make(chan struct{}), done: make(chan struct{})}
	s.set(b)
	go s.run(func() bool { return false })
	time.Sleep(time.Until(time.Now().Truncate(e2eRes).Add(2*e2eRes + 300*time.Millisecond)))
	before := e.otlp.Counts().Requests
	e.otlp.Inject(1, otlptest.Fault{Delay: 4 * time.Second})
	waitFor(t, "a's OTLP request in flight", 5*time.Second, func() bool { return e.otlp.Counts().Requests > before })
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * time.Second) // 3 leases
	fromA := pointsFrom(e.otlp, "a")
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * e2eRes)
	close(s.stop)
	<-s.done
	waitBoth(t, e, s.o, 30*time.Second)
	a.term(t)
	b.term(t)
	resent := resentBuckets(a, b)
	resends := checkLibratoExact(t, e.fake, s.o, true)
	doubled := checkOTLPDelta(t, e.otlp, s.o, resent)
	// After SIGCONT a may flush again (balanced leases move half the
	// partitions back to it), but never a (series, bucket) b delivered.
	fromB := map[e2eKey]bool{}
	var afterCont []e2eKey
	seenA := 0
	for _, p := range e.otlp.Points() {
		k := e2eKey{p.Attrs["source"], p.Time.Add(-e2eRes).Unix()}
		switch p.Resource["worker"] {
		case "b":
			fromB[k] = true
		case "a":
			if seenA++; seenA > fromA {
				afterCont = append(afterCont, k)
			}
		}
	}
	for _, k := range afterCont {
		if fromB[k] {
			t.Errorf("a sent source=%s bucket=%d after SIGCONT, which b had taken over and sent", k.source, k.start)
		}
	}
	t.Logf("%d lines in %d series-buckets; resent buckets %v: %d OTLP series-buckets doubled, %d Librato gauges resent identical",
		s.o.n, len(s.o.reqs), resent, doubled, resends)
}

// TestSharedStateHolderFrozenAfterBucketEnd: the lease holder, which also
// takes traffic, is stopped just after a bucket ends (before its last
// hand-over of it) for longer than its lease, then resumed. b flushes. No
// value is ever sent twice or above what was sent; what a had not handed
// over (its last REDIS_HANDOVER of traffic) is refused when it resumes and
// counted late, exactly: the buckets are short by what a logged as late.
func TestSharedStateHolderFrozenAfterBucketEnd(t *testing.T) {
	t.Parallel() // waits on the clock, not the CPU
	e := newFaultEnv(t, "REDIS_LEASE_TTL=2s", "REDIS_FALLBACK_AFTER=1m")
	a, b := startLeader(t, e)
	s := &sender{o: newOracle(), stop: make(chan struct{}), done: make(chan struct{})}
	s.set(a, b)
	go s.run(func() bool { return false })
	time.Sleep(time.Until(time.Now().Truncate(e2eRes).Add(2*e2eRes + 30*time.Millisecond)))
	s.set(b)
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * time.Second)
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	s.set(a, b)
	time.Sleep(2 * e2eRes)
	close(s.stop)
	<-s.done
	waitBoth(t, e, s.o, 30*time.Second)
	a.term(t)
	b.term(t)

	// OTLP: never above what was sent.
	got := map[e2eKey]float64{}
	for _, p := range e.otlp.Points() {
		if p.Name == testPrefix+".req" {
			got[e2eKey{p.Attrs["source"], p.Time.Add(-e2eRes).Unix()}] += p.Value
		}
	}
	// Librato: the lat count says how many lines each series-bucket got.
	lines := map[e2eKey]int64{}
	for _, m := range e.fake.Measurements() {
		if m.Name == testPrefix+".lat" && m.Summary {
			k := e2eKey{m.Source, m.Time}
			if have, dup := lines[k]; dup && have != m.Count {
				t.Errorf("lat source=%s bucket=%d sent twice with different counts: %d, %d", m.Source, m.Time, have, m.Count)
			}
			lines[k] = m.Count
		}
	}
	s.o.mu.Lock()
	var short int64
	for k, want := range s.o.reqs {
		if got[k] > want {
			t.Errorf("OTLP req{source=%s} bucket %d: %v, more than the %v sent", k.source, k.start, got[k], want)
		}
		n := int64(len(s.o.lats[k]))
		if lines[k] > n {
			t.Errorf("Librato lat source=%s bucket=%d: %d lines, more than the %d sent", k.source, k.start, lines[k], n)
		}
		short += n - lines[k]
	}
	s.o.mu.Unlock()
	// From a's self-metric (its final emission at exit), not its log: the
	// log says it at most once a minute.
	late := a.counted(lateCount)
	// Each line is two measurements (count#req, measure#lat).
	if short*2 != late {
		t.Errorf("%d lines short, but a counted %d measurements late (want %d)", short, late, short*2)
	}
	t.Logf("%d lines in %d series-buckets; %d lines a had not handed over, counted late; resent %v",
		s.o.n, len(s.o.reqs), short, resentBuckets(a, b))
}

// TestSharedStateLateLineNeverSent: after a bucket was delivered, lines for
// it from new sources (which hash to partitions that had no data in it) are
// counted late and never sent. They used to be accepted and delivered a
// bucket later as a second, partial bucket.
func TestSharedStateLateLineNeverSent(t *testing.T) {
	t.Parallel() // waits on the clock, not the CPU
	e := newFaultEnv(t)
	a := startProc(t, e.bin, append(e.env, "REDIS_URL="+e.redis.URL))
	bucket := time.Now().Truncate(e2eRes).Add(e2eRes)
	time.Sleep(time.Until(bucket.Add(100 * time.Millisecond)))
	at := syslogTime(bucket.Add(50 * time.Millisecond))
	if !postBody(a.url, "on-time", frame(fmt.Sprintf("<190>1 %s host app web.1 - count#req=1", at))) {
		t.Fatal("POST refused")
	}
	waitFor(t, "the bucket at Librato", 10*time.Second, func() bool { return len(e.fake.Measurements()) > 0 })
	var late []string
	for i := range 8 {
		late = append(late, fmt.Sprintf("<190>1 %s host app run.%d - count#req=1", at, i))
	}
	if !postBody(a.url, "late", frame(late...)) {
		t.Fatal("POST refused")
	}
	time.Sleep(2*e2eRes + e2eGrace + time.Second)
	a.term(t)
	for _, m := range e.fake.Measurements() {
		if m.Source != "web.1" || m.Time != bucket.Unix() {
			t.Errorf("sent: %s source=%s time=%d (want only web.1 at %d)", m.Name, m.Source, m.Time, bucket.Unix())
		}
	}
	for _, p := range e.otlp.Points() {
		if p.Attrs["source"] != "web.1" {
			t.Errorf("OTLP got %s", p.Key())
		}
	}
}

// TestSharedStateRedisLosesData: two workers under a steady stream; just
// after a bucket ends Redis loses its data (FLUSHALL, or a restart without
// persistence). The workers find the marker changed at their next
// hand-over and write their open partials again: every bucket is delivered
// whole, once. Before, every series that did not change again after the
// loss was short.
func TestSharedStateRedisLosesData(t *testing.T) {
	for name, lose := range map[string]func(srv *redistest.Server) error{
		"FLUSHALL": func(srv *redistest.Server) error { _, err := srv.Do("FLUSHALL"); return err },
		"restart":  func(srv *redistest.Server) error { return srv.Restart() },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel() // waits on the clock, not the CPU
			e := newFaultEnv(t, "REDIS_FALLBACK_AFTER=1m")
			a, b := startLeader(t, e)
			s := &sender{o: newOracle(), stop: make(chan struct{}), done: make(chan struct{})}
			s.set(a, b)
			go s.run(func() bool { return false })
			time.Sleep(time.Until(time.Now().Truncate(e2eRes).Add(2*e2eRes + 150*time.Millisecond)))
			if err := lose(e.redis); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * e2eRes)
			close(s.stop)
			<-s.done
			waitBoth(t, e, s.o, 30*time.Second)
			a.term(t)
			b.term(t)
			checkLibratoExact(t, e.fake, s.o, false)
			checkOTLPDelta(t, e.otlp, s.o, nil)
			if n := len(logged(a.stderr.String()+b.stderr.String(), "Redis lost its data", "rewritten_series")); n != 2 {
				t.Errorf("%d workers logged the data loss, want 2", n)
			}
			got, sent := deliveredLines(e.fake, s.o)
			t.Logf("%d lines in %d series-buckets; Librato got %v of %v req units", s.o.n, len(s.o.reqs), got, sent)
		})
	}
}

// TestSharedStateRedisOutOfMemory: Redis refuses writes (maxmemory with
// noeviction) for 8 s under a steady stream to two workers. Bodies are
// kept (a Frame-Id check refused is not a duplicate), partials kept and
// retried, and no bucket is flushed while a worker holds a partial Redis
// refused: once Redis has memory again every bucket is delivered late but
// whole, once. Before, the buckets were flushed without the refused
// partials, which were then counted late.
func TestSharedStateRedisOutOfMemory(t *testing.T) {
	t.Parallel() // waits on the clock, not the CPU
	e := newFaultEnv(t, "REDIS_LEASE_TTL=2s", "REDIS_FALLBACK_AFTER=1m")
	a, b := startLeader(t, e)
	s := &sender{o: newOracle(), stop: make(chan struct{}), done: make(chan struct{})}
	s.set(a, b)
	go s.run(func() bool { return false })
	time.Sleep(time.Until(time.Now().Truncate(e2eRes).Add(2*e2eRes + e2eRes/2)))
	for _, c := range [][]string{{"CONFIG", "SET", "maxmemory-policy", "noeviction"}, {"CONFIG", "SET", "maxmemory", "1"}} {
		if _, err := e.redis.Do(c...); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(8 * time.Second)
	if _, err := e.redis.Do("CONFIG", "SET", "maxmemory", "0"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * e2eRes)
	close(s.stop)
	<-s.done
	waitBoth(t, e, s.o, 30*time.Second)
	a.term(t)
	b.term(t)
	checkLibratoExact(t, e.fake, s.o, false)
	checkOTLPDelta(t, e.otlp, s.o, nil)
	if out := a.stderr.String() + b.stderr.String(); !strings.Contains(out, "reason=oom") {
		t.Errorf("no worker logged the reason (oom)")
	}
	got, sent := deliveredLines(e.fake, s.o)
	t.Logf("%d lines in %d series-buckets; Librato got %v of %v req units", s.o.n, len(s.o.reqs), got, sent)
}
