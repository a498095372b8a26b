package store

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
	"github.com/redis/go-redis/v9"
)

// keyClass is a kind of key in docs/shared-state.md's key layout, with the
// lifetime documented for it: no TTL (one per partition or per app), or at
// most maxTTL.
type keyClass struct {
	name   string
	re     *regexp.Regexp
	maxTTL time.Duration // 0: kept without a TTL (the documented permanent keys)
}

// TestSimulatedDayBoundedMemory: two workers for a simulated day of
// one-minute buckets (1,440) under a steady stream, with a new one-off
// source (run.N) in every bucket and drain bodies checked by Frame-Id.
// Every key in Redis is of a documented kind and either one of the few
// documented permanent ones or expiring within its documented lifetime
// (the bucket keys' Retention and the Frame-Id TTL are a few real seconds
// here, the clock of the buckets is simulated); the running totals keep
// only the series of the last TotalsTTL; and the memory of the keys that
// do not expire by themselves within seconds is the same at the end of
// the day as after its third hour. Before pruning, the totals kept every
// one-off ever seen.
func TestSimulatedDayBoundedMemory(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	const (
		res        = time.Minute
		buckets    = 24 * 60
		totalsTTL  = time.Hour
		retention  = 2 * time.Second // real time: the closed marks' lifetime
		frameTTL   = time.Second     // real time
		leaseTTL   = 5 * time.Second
		partitions = 4
	)
	start := time.Now().Truncate(res).Add(-48 * time.Hour)
	c := &clock{t: start}
	r := &recorder{}
	cfg := func(id string) Config {
		return Config{URL: srv.URL, Partitions: partitions, Resolution: res, Grace: 5 * time.Second, ID: id,
			Outlets: []string{"librato"}, Deliver: r.deliver("librato"), Now: c.now, LeaseTTL: leaseTTL, LeaseSettle: -1,
			OpTimeout: time.Second, TotalsTTL: totalsTTL, Retention: retention, MaxAge: 2 * time.Hour}
	}
	a, err := Open(cfg("a"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(cfg("b"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	opt, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()

	day := time.Duration(buckets) * res
	classes := []keyClass{
		{"lease", regexp.MustCompile(`^dm:\{p\d+\}:lease$`), leaseTTL},
		{"epoch", regexp.MustCompile(`^dm:\{p\d+\}:epoch$`), 0},
		{"upto", regexp.MustCompile(`^dm:\{p\d+\}:upto$`), 0},
		{"closed", regexp.MustCompile(`^dm:\{p\d+\}:closed:\d+$`), retention},
		{"totals", regexp.MustCompile(`^dm:\{p\d+\}:totals$`), totalsTTL},
		{"prune", regexp.MustCompile(`^dm:\{p\d+\}:prune$`), totalsTTL},
		{"feed", regexp.MustCompile(`^dm:feed$`), 0},
		{"marker", regexp.MustCompile(`^dm:marker$`), 0},
		{"ids", regexp.MustCompile(`^dm:\{w\}:ids$`), 0},
		{"marks", regexp.MustCompile(`^dm:\{w\}:[0-9a-z]+:(alive|clean)$`), leaseTTL},
		{"frame", regexp.MustCompile(`^dm:frame:`), frameTTL},
		// Kept until the bucket is delivered (deleted then): none may be
		// left from a delivered bucket, and they expire with Retention.
		{"bucket", regexp.MustCompile(`^dm:\{p\d+\}:(parts|sent|tot|done|fed|fb):\d+$`), retention},
		{"pending", regexp.MustCompile(`^dm:\{p\d+\}:pending$`), 0},
	}
	// scan checks every key's kind and TTL and returns the number of keys
	// and the memory of those that do not expire by themselves within
	// seconds (permanent ones, totals), by kind. The feed is capped by its
	// length (checked apart: its memory moves between one and two nodes).
	scan := func(hour int) (keys int, mem map[string]int64) {
		t.Helper()
		mem = map[string]int64{}
		iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
		for iter.Next(ctx) {
			key := iter.Val()
			keys++
			var cl *keyClass
			for i := range classes {
				if classes[i].re.MatchString(key) {
					cl = &classes[i]
					break
				}
			}
			if cl == nil {
				t.Errorf("hour %d: key %q is of no documented kind", hour, key)
				continue
			}
			ttl, err := rdb.PTTL(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case ttl == -2: // expired since the scan found it (go-redis: -2 for a missing key)
				continue
			case cl.maxTTL == 0 && ttl >= 0:
				t.Errorf("hour %d: %s key %q has a TTL (%v); documented without", hour, cl.name, key, ttl)
			case cl.maxTTL > 0 && (ttl < 0 || ttl > cl.maxTTL):
				t.Errorf("hour %d: %s key %q: TTL %v, want one of at most %v", hour, cl.name, key, ttl, cl.maxTTL)
			}
			if (cl.maxTTL == 0 || cl.maxTTL >= totalsTTL) && cl.name != "feed" {
				n, err := rdb.MemoryUsage(ctx, key).Result()
				if err != nil {
					t.Fatal(err)
				}
				mem[cl.name] += n
			}
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
		return keys, mem
	}
	sum := func(m map[string]int64) (n int64) {
		for _, v := range m {
			n += v
		}
		return n
	}

	var memAt3 int64
	var hourly []string
	for i := range buckets {
		bs := start.Add(time.Duration(i) * res)
		c.set(bs.Add(time.Second))
		for w, st := range []*Store{a, b} {
			vals := map[[2]string][]float64{{"req", "web.1"}: {1}, {"req", fmt.Sprintf("web.%d", 2+w)}: {1}}
			if w == 0 {
				vals[[2]string{"req", fmt.Sprintf("run.%d", i)}] = []float64{1}
			}
			if err := st.Handover(ctx, takeFrom(t, bs, metric.Counter, vals)); err != nil {
				t.Fatal(err)
			}
			if dup, err := st.FrameSeen(ctx, "", fmt.Sprintf("%d-%d", i, w), frameTTL); dup || err != nil {
				t.Fatalf("Frame-Id %d-%d: dup %v, err %v", i, w, dup, err)
			}
		}
		c.set(bs.Add(res + 6*time.Second))
		a.Tick(ctx)
		a.Tick(ctx) // records the verdicts: the bucket is delivered and its keys deleted
		if (i+1)%60 != 0 {
			continue
		}
		hour := (i + 1) / 60
		keys, mem := scan(hour)
		if n, err := rdb.XLen(ctx, "dm:feed").Result(); err != nil || n > DefaultFeedLen*partitions {
			t.Errorf("hour %d: feed of %d entries (%v), want at most %d", hour, n, err, DefaultFeedLen*partitions)
		}
		info, err := rdb.InfoMap(ctx, "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		hourly = append(hourly, fmt.Sprintf("h%d: %d keys, %d B, used_memory %s", hour, keys, sum(mem), info["Memory"]["used_memory"]))
		if hour == 3 {
			memAt3 = sum(mem)
		}
		if hour > 3 && sum(mem) > memAt3+memAt3/10 {
			t.Errorf("hour %d: %d bytes in the keys that do not expire within seconds (%v), more than 110%% of the %d after hour 3",
				hour, sum(mem), mem, memAt3)
		}
	}
	t.Logf("simulated %v in %d buckets: %s", day, buckets, strings.Join(hourly, "; "))

	// The running totals: the two steady series, the one-offs of the last
	// TotalsTTL (60 buckets, plus the one being flushed), and in each
	// partition at most one not yet swept.
	var fields int64
	for p := range partitions {
		n, err := rdb.HLen(ctx, fmt.Sprintf("dm:{p%d}:totals", p)).Result()
		if err != nil {
			t.Fatal(err)
		}
		fields += n
	}
	if want := int64(3 + 61 + partitions); fields > want {
		t.Errorf("%d running-totals fields after a day of %d one-off sources, want at most %d", fields, buckets, want)
	}
	t.Logf("running-totals fields at the end: %d (TotalsPruned %d)", fields, a.Stats().TotalsPruned)
	if st := a.Stats(); st.TotalsPruned < buckets-61-partitions || st.BucketsDone == 0 {
		t.Errorf("TotalsPruned %d, BucketsDone %d; want at least %d pruned", st.TotalsPruned, st.BucketsDone, buckets-61-partitions)
	}
	if n := len(r.buckets("librato")); n < buckets {
		t.Errorf("%d partition-buckets delivered over %d buckets", n, buckets)
	}
}
