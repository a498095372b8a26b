package emitter

import (
	"bufio"
	"bytes"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/l2met"
	"github.com/dynometrics/dynometrics/internal/metric"
	metrics "github.com/rcrowley/go-metrics"
)

// routerDelay is how long after an emission the log router stamps the line
// in this test (well below AlignLead of every interval tested).
const routerDelay = 30 * time.Millisecond

// pipeline simulates 3 minutes of an app timing requests (one every 250 ms,
// 1–23 ms each) and emitting at the given tick times; each emission's lines
// are stamped routerDelay later and go through the real l2met parser into a
// real aggregator of the given resolution. It returns the flushed buckets and
// the raw durations in ms with the time each was observed.
func pipeline(t *testing.T, resolution time.Duration, ticks []time.Time) ([]*aggregate.Bucket, []observed) {
	t.Helper()
	reg := metrics.NewRegistry()
	timer := GetOrRegisterTimer("db.query", reg)
	e, err := New(Config{Registry: reg, Writer: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	now := ticks[0]
	agg, err := aggregate.New(aggregate.Config{Resolution: resolution, Grace: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	parser := l2met.NewParser()
	var obs []observed
	at := ticks[0] // the dyno starts
	for i, tick := range ticks {
		now = tick
		for ; at.Before(tick); at = at.Add(250 * time.Millisecond) {
			ms := 1 + (len(obs)*7)%23
			timer.Update(time.Duration(ms) * time.Millisecond)
			obs = append(obs, observed{at, float64(ms)})
		}
		var out bytes.Buffer
		if _, err := e.WriteTo(&out); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			ms, err := parser.Parse(nil, l2met.Line{Time: tick.Add(routerDelay), AppName: []byte("app"), ProcID: []byte("web.1"), Msg: sc.Bytes()})
			if err != nil {
				t.Fatalf("emission %d: %v", i, err)
			}
			agg.Add(ms)
		}
	}
	return agg.FlushAll(), obs
}

type observed struct {
	at time.Time
	ms float64
}

// checkBuckets compares every bucket's timer statistics with the durations
// observed during that bucket, shifted by lead: [start−lead, end−lead).
func checkBuckets(t *testing.T, buckets []*aggregate.Bucket, obs []observed, lead time.Duration) (mismatches int) {
	t.Helper()
	get := func(b *aggregate.Bucket, name string) aggregate.Series {
		for _, s := range b.Series {
			if s.Name == name {
				return s
			}
		}
		return aggregate.Series{Name: name, Kind: metric.Sample, Unit: "ms", Last: math.NaN()} // a mismatch

	}
	for _, b := range buckets {
		from, to := b.Start.Add(-lead), b.Start.Add(b.Period-lead)
		var vals []float64
		sum := 0.0
		for _, o := range obs {
			if !o.at.Before(from) && o.at.Before(to) {
				vals = append(vals, o.ms)
				sum += o.ms
			}
		}
		count := get(b, "db.query.count")
		if len(vals) == 0 {
			if count.Sum != 0 {
				mismatches++
				t.Logf("bucket %s: count %v, want 0", b.Start.Format("15:04:05"), count.Sum)
			}
			continue
		}
		minS, maxS, mean := get(b, "db.query.min"), get(b, "db.query.max"), get(b, "db.query.mean")
		if count.Kind != metric.Counter || minS.Kind != metric.Sample || minS.Unit != "ms" {
			t.Fatalf("bucket %s: unexpected kinds %v %v %q", b.Start, count.Kind, minS.Kind, minS.Unit)
		}
		want := [4]float64{float64(len(vals)), slices.Min(vals), slices.Max(vals), sum / float64(len(vals))}
		got := [4]float64{count.Sum, minS.Last, maxS.Last, mean.Last}
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-9 {
				mismatches++
				t.Logf("bucket %s: count, min, max, mean = %v, want %v (the durations of %s–%s)",
					b.Start.Format("15:04:05"), got, want, from.Format("15:04:05.000"), to.Format("15:04:05.000"))
				break
			}
		}
	}
	return mismatches
}

// TestTimerStatisticsPerBucket is issue 12's timer case through the real
// parser and aggregator: with emissions aligned by AlignedTicker, every
// bucket's count, min, max and mean are those of the durations observed
// during that bucket (shifted by the lead of AlignLead) when EMITTER_INTERVAL
// equals METRICS_RESOLUTION.
func TestTimerStatisticsPerBucket(t *testing.T) {
	start := time.Date(2026, 12, 1, 14, 0, 3, 0, time.UTC) // mid-bucket, as a dyno starts
	aligned := func(d time.Duration) []time.Time {
		ts := []time.Time{start}
		for now := start; now.Before(start.Add(3 * time.Minute)); {
			now = now.Add(untilNextTick(now, d, AlignLead(d)))
			ts = append(ts, now)
		}
		return ts
	}
	for _, d := range []time.Duration{10 * time.Second, time.Minute, 5 * time.Second} {
		t.Run(d.String(), func(t *testing.T) {
			ticks := aligned(d)
			buckets, obs := pipeline(t, d, ticks)
			if len(buckets) < 4 {
				t.Fatalf("%d buckets", len(buckets))
			}
			if n := checkBuckets(t, buckets, obs, AlignLead(d)); n > 0 {
				t.Errorf("%d buckets with statistics of the wrong durations", n)
			}
		})
	}

	// The check catches what issue 12 saw: emissions every interval from the
	// start (a plain time.Ticker), and emissions more often than the
	// resolution (FromEnv refuses that when it sees METRICS_RESOLUTION).
	t.Run("oracle", func(t *testing.T) {
		var plain []time.Time
		for i := range 19 {
			plain = append(plain, start.Add(time.Duration(i)*10*time.Second))
		}
		buckets, obs := pipeline(t, 10*time.Second, plain)
		if n := checkBuckets(t, buckets, obs, AlignLead(10*time.Second)); n == 0 {
			t.Error("unaligned emissions: no mismatch found; the check cannot fail")
		}
		five := aligned(5 * time.Second)
		buckets, obs = pipeline(t, 10*time.Second, five)
		if n := checkBuckets(t, buckets, obs, AlignLead(5*time.Second)); n == 0 {
			t.Error("5s emissions into 10s buckets: no mismatch found; the check cannot fail")
		}
	})
}
