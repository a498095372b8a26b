package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/librato/libratotest"
	"github.com/dynometrics/dynometrics/internal/otlpout/otlptest"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
	"github.com/redis/go-redis/v9"
)

// Balanced leases, end to end: four worker processes (the built binary)
// share one real redis-server and 16 partitions.

const balancePartitions = 16

// spreadBody returns a drain body of n lines stamped now, one source after
// the other from web.0…web.63 (so that every partition has data in every
// bucket), and records them in the oracle.
func (o *oracle) spreadBody(next *int, n int) []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	var msgs []string
	for range n {
		now := time.Now().UTC()
		src := fmt.Sprintf("web.%d", *next%64)
		c, lat := 1+*next%3, 1+*next%97
		*next++
		msgs = append(msgs, fmt.Sprintf("<190>1 %s host app %s - count#req=%d measure#lat=%dms", syslogTime(now), src, c, lat))
		k := e2eKey{src, now.Truncate(e2eRes).Unix()}
		o.reqs[k] += float64(c)
		o.lats[k] = append(o.lats[k], float64(lat))
		o.n++
	}
	return frame(msgs...)
}

// leaseHolders reads every partition's lease in Redis: holder id → count
// ("" counts the free ones).
func leaseHolders(t *testing.T, rdb *redis.Client) map[string]int {
	t.Helper()
	out := map[string]int{}
	for p := range balancePartitions {
		v, err := rdb.Get(context.Background(), fmt.Sprintf("dm:{p%d}:lease", p)).Result()
		if err == redis.Nil {
			out[""]++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		_, id, _ := strings.Cut(v, " ")
		out[id]++
	}
	return out
}

// partitionOf mirrors internal/store's partition of a series: FNV-1a of
// name NUL source, or of app NUL name NUL source for a series of an app
// (multi-app mode), modulo the partition count n.
func partitionOf(app, name, source string, n int) int {
	key := name + "\x00" + source
	if app != "" {
		key = app + "\x00" + key
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum64() % uint64(n))
}

// sentPartitions returns, per worker (its OTEL_RESOURCE_ATTRIBUTES
// worker=…), the partitions of the req series it sent to the OTLP receiver
// for the bucket starting at start.
func sentPartitions(r *otlptest.Receiver, start int64) map[string]map[int]bool {
	out := map[string]map[int]bool{}
	for _, p := range r.Points() {
		if p.Name != testPrefix+".req" || p.Time.Add(-e2eRes).Unix() != start {
			continue
		}
		w := p.Resource["worker"]
		if out[w] == nil {
			out[w] = map[int]bool{}
		}
		out[w][partitionOf("", "req", p.Attrs["source"], balancePartitions)] = true
	}
	return out
}

// shares returns the sorted lease counts of the holders, and the free ones.
func shares(h map[string]int) (counts []int, free int) {
	for id, n := range h {
		if id == "" {
			free = n
			continue
		}
		counts = append(counts, n)
	}
	slices.Sort(counts)
	return counts, free
}

var (
	leasesGauge  = regexp.MustCompile(`sample#worker\.redis\.leases=(\d+)`)
	flushedCount = regexp.MustCompile(`count#worker\.redis\.buckets_flushed=(\d+)`)
	lateCount    = regexp.MustCompile(`count#worker\.redis\.late_measurements=(\d+)`)
)

// lastLeases is the last worker.redis.leases gauge the worker printed.
func (p *proc) lastLeases() int {
	m := leasesGauge.FindAllStringSubmatch(p.stdout.String(), -1)
	if len(m) == 0 {
		return -1
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// flushed sums the worker.redis.buckets_flushed counts the worker printed
// (each emission prints the interval's increase).
func (p *proc) flushed() int {
	return int(p.counted(flushedCount))
}

// counted sums the counts re (count#NAME=(\d+)) matches in what the worker
// printed: each emission prints the interval's increase, and the last one,
// at exit, the rest.
func (p *proc) counted(re *regexp.Regexp) int64 {
	var sum int64
	for _, m := range re.FindAllStringSubmatch(p.stdout.String(), -1) {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		sum += n
	}
	return sum
}

// TestSharedStateBalancedLeases, in the default mode (REDIS_BALANCE
// unset): four workers each come to hold 4 of the 16 partitions (seen in
// Redis' lease keys and in each worker's worker.redis.leases gauge) and
// flush their share of every bucket: the OTLP receiver gets one bucket's 16
// partitions from the four workers, 4 each, none from two. One leaves
// (SIGTERM) and the other three hold 6, 5 and 5 within the documented time;
// a new one joins them and the four hold 4 × 4 again within it. The strict
// fake Librato gets every (series, bucket) exactly once with its exact
// aggregate.
func TestSharedStateBalancedLeases(t *testing.T) {
	t.Parallel() // waits on the clock, not the CPU
	bin := buildBinary(t, ".")
	srv := redistest.Start(t)
	fake := libratotest.New(t, libratotest.Options{User: testLUser, Token: testLToken})
	otlp := otlptest.New(t, otlptest.Options{})
	env := []string{
		"DRAIN_USER=" + testUser, "DRAIN_PASSWORD=" + testPass, "METRICS_PREFIX=" + testPrefix,
		"METRICS_RESOLUTION=" + e2eRes.String(), "METRICS_GRACE=" + e2eGrace.String(),
		"REDIS_URL=" + srv.URL, "REDIS_HANDOVER=" + e2eHandover.String(),
		"REDIS_PARTITIONS=" + strconv.Itoa(balancePartitions), "REDIS_LEASE_TTL=2s",
		"LIBRATO_USER=" + testLUser, "LIBRATO_TOKEN=" + testLToken, "LIBRATO_URL=" + fake.URL,
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + otlp.URL,
		"SHUTDOWN_TIMEOUT=10s", "EMITTER_INTERVAL=" + e2eRes.String(),
	}
	opt, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()

	var procs []*proc
	for i := range 4 {
		procs = append(procs, startProc(t, bin, append(slices.Clone(env), fmt.Sprintf("OTEL_RESOURCE_ATTRIBUTES=worker=w%d", i))))
	}
	joined := time.Now()
	o := newOracle()
	s := &sender{o: o, stop: make(chan struct{}), done: make(chan struct{})}
	s.set(procs...)
	go func() {
		defer close(s.done)
		next := 0
		for i := 0; ; i++ {
			select {
			case <-s.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			s.mu.Lock()
			live := slices.Clone(s.live)
			s.mu.Unlock()
			body := s.o.spreadBody(&next, 16)
			for try := 0; !postBody(live[(i+try)%len(live)].url, fmt.Sprintf("f-%06d", i), body); try++ {
				s.mu.Lock()
				s.fails++
				s.mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		}
	}()

	// Balanced: 4 × 4, within the documented time of the last join.
	const bound = 5 * time.Second // docs/shared-state.md: 3 renewals (3 s) + a delivery in flight
	waitFor(t, "4 workers holding 4 partitions each", 20*time.Second, func() bool {
		c, free := shares(leaseHolders(t, rdb))
		return free == 0 && slices.Equal(c, []int{4, 4, 4, 4})
	})
	t.Logf("balanced %v after the last worker joined", time.Since(joined).Round(100*time.Millisecond))
	// A bucket that starts after the balance and ends before anyone leaves.
	shareBucket := time.Now().Truncate(e2eRes).Add(2 * e2eRes).Unix()
	if d := time.Since(joined); d > bound+2*time.Second { // + the workers' start-up
		t.Errorf("balanced after %v, documented bound %v", d, bound)
	}
	// Each worker's own gauge agrees, and each flushes its share of
	// every bucket: 4 partitions × the buckets of the window.
	time.Sleep(e2eRes + 500*time.Millisecond) // an emission after the balance
	for i, p := range procs {
		if n := p.lastLeases(); n != 4 {
			t.Errorf("worker %d: worker.redis.leases=%d, want 4", i, n)
		}
	}
	before := make([]int, len(procs))
	for i, p := range procs {
		before[i] = p.flushed()
	}
	time.Sleep(4 * e2eRes)
	total := 0
	window := make([]int, len(procs))
	for i, p := range procs {
		window[i] = p.flushed() - before[i]
		total += window[i]
	}
	t.Logf("(partition, bucket)s flushed per worker over %v: %v", 4*e2eRes, window)
	for i, n := range window {
		// 4 buckets × 4 partitions each, ± one bucket for the emission edges.
		if n < 8 || n > 24 {
			t.Errorf("worker %d flushed %d (partition, bucket)s in 4 buckets, want about 16 (its 4 partitions × 4 buckets); all: %v", i, n, window)
		}
	}

	// One leaves: the others take its partitions, 6, 5, 5, in time.
	s.set(procs[:3]...)
	left := time.Now()
	procs[3].term(t)
	waitFor(t, "3 workers holding 6, 5 and 5 partitions", 20*time.Second, func() bool {
		c, free := shares(leaseHolders(t, rdb))
		return free == 0 && slices.Equal(c, []int{5, 5, 6})
	})
	took := time.Since(left)
	t.Logf("rebalanced %v after SIGTERM", took.Round(100*time.Millisecond))
	if took > bound {
		t.Errorf("rebalanced after %v, documented bound %v", took, bound)
	}
	// One joins the running fleet: 4 × 4 again, in time.
	time.Sleep(e2eRes)
	joiner := startProc(t, bin, append(slices.Clone(env), "OTEL_RESOURCE_ATTRIBUTES=worker=w4"))
	joinedAt := time.Now()
	s.set(procs[0], procs[1], procs[2], joiner)
	waitFor(t, "4 workers holding 4 partitions each after a join", 20*time.Second, func() bool {
		c, free := shares(leaseHolders(t, rdb))
		return free == 0 && slices.Equal(c, []int{4, 4, 4, 4})
	})
	tookJoin := time.Since(joinedAt)
	t.Logf("rebalanced %v after a worker joined the running fleet", tookJoin.Round(100*time.Millisecond))
	if tookJoin > bound {
		t.Errorf("rebalanced after %v after a join, documented bound %v", tookJoin, bound)
	}
	time.Sleep(3 * e2eRes)
	close(s.stop)
	<-s.done

	waitDelivered(t, fake, o, 30*time.Second)
	for _, p := range append(procs[:3], joiner) {
		p.term(t)
	}
	checkLibratoExact(t, fake, o, false)
	// One bucket, four flushers: each sent its 4 partitions, no partition
	// came from two workers, and all 16 came.
	byWorker := sentPartitions(otlp, shareBucket)
	from := map[int]string{}
	for w, ps := range byWorker {
		if len(ps) != balancePartitions/4 {
			t.Errorf("bucket %d: worker %s flushed partitions %v, want 4 of them", shareBucket, w, slices.Sorted(maps.Keys(ps)))
		}
		for p := range ps {
			if other, dup := from[p]; dup {
				t.Errorf("bucket %d: partition %d flushed by %s and %s", shareBucket, p, other, w)
			}
			from[p] = w
		}
	}
	if len(byWorker) != 4 || len(from) != balancePartitions {
		t.Errorf("bucket %d: %d workers flushed %d partitions, want 4 workers and all %d", shareBucket, len(byWorker), len(from), balancePartitions)
	}
	t.Logf("bucket %d: partitions flushed per worker: %v", shareBucket, byWorker)
	for _, p := range append(procs, joiner) {
		if out := p.stderr.String(); strings.Contains(out, "level=ERROR") {
			t.Errorf("worker log has an error:\n%s", out)
		}
	}
	t.Logf("%d lines in %d series-buckets; %d refused POSTs retried", o.n, len(o.reqs), s.fails)
}
