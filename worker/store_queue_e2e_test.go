package main

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/librato/libratotest"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
	"github.com/redis/go-redis/v9"
)

// queueSeries is METRICS_MAX_SERIES in TestSharedStateBucketAtBoundDeliveredWhole:
// the bound scaled down from 100,000 so that the test runs in seconds. The
// Librato queue is then 3 × ⌈2,000 × 4 / 300⌉ = 81 batches (worker/queue.go),
// and a merged bucket at the bound with 4 workers is 8,000 measure# series,
// 32,000 gauges, 107 requests: more than the queue.
const queueSeries = 2000

var pushWaits = regexp.MustCompile(`count#worker\.outlet\.librato\.push_waits=(\d+)`)

// TestSharedStateBucketAtBoundDeliveredWhole: four worker processes each
// receive METRICS_MAX_SERIES distinct measure# series in one bucket, so the
// merged bucket holds 4 × the bound. It reaches the strict fake Librato
// whole, every gauge once with its value, both when the four share the
// flushing (balanced leases, the default) and when one worker flushes all
// of it (REDIS_BALANCE=false, as after three workers died): the bucket is
// then larger than that worker's outlet queue and the receiver is slow (40 ms
// a request), and the flush waits for room (backpressure) instead of
// dropping batches.
func TestSharedStateBucketAtBoundDeliveredWhole(t *testing.T) {
	t.Parallel() // waits on the clock, not the CPU
	bin := buildBinary(t, ".")
	for _, mode := range []string{"balanced", "one flusher"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			fake := libratotest.New(t, libratotest.Options{User: testLUser, Token: testLToken})
			env := []string{
				"DRAIN_USER=" + testUser, "DRAIN_PASSWORD=" + testPass, "METRICS_PREFIX=" + testPrefix,
				"METRICS_RESOLUTION=" + e2eRes.String(), "METRICS_GRACE=" + e2eGrace.String(),
				"METRICS_MAX_SERIES=" + strconv.Itoa(queueSeries),
				"REDIS_URL=" + srv.URL, "REDIS_HANDOVER=" + e2eHandover.String(), "REDIS_LEASE_TTL=2s",
				"REDIS_PARTITIONS=" + strconv.Itoa(balancePartitions),
				"LIBRATO_USER=" + testLUser, "LIBRATO_TOKEN=" + testLToken, "LIBRATO_URL=" + fake.URL,
				"SHUTDOWN_TIMEOUT=10s", "EMITTER_INTERVAL=1h",
			}
			if mode == "one flusher" {
				env = append(env, "REDIS_BALANCE=false")
			}
			opt, err := redis.ParseURL(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			rdb := redis.NewClient(opt)
			defer rdb.Close()
			var procs []*proc
			for range 4 {
				procs = append(procs, startProc(t, bin, env))
				if mode == "one flusher" && len(procs) == 1 {
					waitFor(t, "the first worker to hold every partition", 10*time.Second, func() bool {
						c, free := shares(leaseHolders(t, rdb))
						return free == 0 && slices.Equal(c, []int{balancePartitions})
					})
				}
			}
			want := []int{4, 4, 4, 4}
			if mode == "one flusher" {
				want = []int{balancePartitions}
			}
			waitFor(t, fmt.Sprintf("leases held %v", want), 20*time.Second, func() bool {
				c, free := shares(leaseHolders(t, rdb))
				return free == 0 && slices.Equal(c, want)
			})

			// One bucket: worker i gets the series m0…m19 of sources
			// w<i>.0…w<i>.99, 2,000 of them, stamped 100 ms into the bucket.
			bucket := time.Now().Truncate(e2eRes).Add(e2eRes)
			time.Sleep(time.Until(bucket.Add(50 * time.Millisecond)))
			at := syslogTime(bucket.Add(100 * time.Millisecond))
			vals := map[[2]string]int{}
			for i, p := range procs {
				var msgs []string
				for j := range queueSeries {
					name, src := fmt.Sprintf("m%d", j%20), fmt.Sprintf("w%d.%d", i, j/20)
					v := 1 + (i*queueSeries+j)%997
					vals[[2]string{name, src}] = v
					msgs = append(msgs, fmt.Sprintf("<190>1 %s host app %s - measure#%s=%dms", at, src, name, v))
				}
				for k := 0; k < len(msgs); k += 500 {
					if !postBody(p.url, fmt.Sprintf("q-%d-%d", i, k), frame(msgs[k:k+500]...)) {
						t.Fatalf("POST to worker %d refused", i)
					}
				}
			}
			if d := time.Since(bucket); d > e2eRes {
				t.Fatalf("posting took until %v after the bucket's start, past its end", d)
			}
			// A slow receiver: 40 ms a request, so a flush pushes faster
			// than the queue drains.
			fake.Inject(300, libratotest.Fault{Delay: 40 * time.Millisecond})
			wantGauges := 4 * len(vals)
			waitFor(t, fmt.Sprintf("%d gauges at the fake Librato", wantGauges), 30*time.Second, func() bool {
				return len(fake.Measurements()) >= wantGauges
			})
			time.Sleep(e2eRes) // anything sent twice would arrive now
			var waits int64
			for _, p := range procs {
				p.term(t)
				waits += p.counted(pushWaits)
			}

			type key struct {
				name, source string
			}
			got := map[key]libratotest.Measurement{}
			for _, m := range fake.Measurements() {
				k := key{m.Name, m.Source}
				if _, dup := got[k]; dup {
					t.Errorf("%s source=%s received twice", m.Name, m.Source)
				}
				if m.Time != bucket.Unix() {
					t.Errorf("%s source=%s at %d, want the bucket %d", m.Name, m.Source, m.Time, bucket.Unix())
				}
				got[k] = m
			}
			bad := 0
			for s, v := range vals {
				m, ok := got[key{testPrefix + "." + s[0], s[1]}]
				if !ok || m.Count != 1 || m.Sum != float64(v) {
					if bad++; bad <= 10 {
						t.Errorf("%s source=%s: got %+v (found %v), want one value %d", s[0], s[1], m, ok, v)
					}
				}
			}
			if len(got) != wantGauges || bad > 0 {
				t.Errorf("%d gauges (want %d), %d of %d series wrong or missing", len(got), wantGauges, bad, len(vals))
			}
			if mode == "one flusher" && waits == 0 {
				t.Errorf("the one flusher never waited for queue room: the bucket did not exceed its queue, the test proves nothing")
			}
			t.Logf("%s: %d series from 4 workers (METRICS_MAX_SERIES=%d each), %d gauges delivered; flushes that waited for queue room: %d",
				mode, len(vals), queueSeries, len(got), waits)
		})
	}
}
