package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/store/redistest"
)

// BenchmarkBucketCycle runs whole buckets through Redis: `workers` workers
// each hand over the partials of `series` series (of which every worker sees
// every series) `handovers` times per bucket (a 60 s bucket at the default
// REDIS_HANDOVER of 2 s is 30), with `values` values per series per
// hand-over, then one worker flushes the bucket. It reports the Redis
// commands and round trips per bucket, and the Redis memory per series at
// the bucket's peak (INFO used_memory before the flush, less the empty
// server's), which do not depend on the number of values (the line rate).
// With apps, the series are spread over that many apps (multi-app mode),
// the same names and sources in each.
func BenchmarkBucketCycle(b *testing.B) {
	srv := redistest.Start(b)
	for _, tc := range []struct{ series, workers, handovers, values, apps int }{
		{1000, 1, 30, 1, 0},
		{1000, 1, 30, 1, 10},
		{1000, 1, 30, 20, 0},
		{1000, 2, 30, 1, 0},
		{1000, 4, 30, 1, 0},
		{10000, 1, 30, 1, 0},
		{10000, 1, 30, 1, 10},
		{10000, 2, 30, 1, 0},
	} {
		name := fmt.Sprintf("series=%d/workers=%d/handovers=%d/values=%d", tc.series, tc.workers, tc.handovers, tc.values)
		if tc.apps > 0 {
			name += fmt.Sprintf("/apps=%d", tc.apps)
		}
		b.Run(name, func(b *testing.B) {
			if _, err := srv.Do("FLUSHALL"); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			start := time.Unix(1_700_000_040, 0).UTC()
			c := &clock{t: start}
			var delivered int
			stores := make([]*Store, tc.workers)
			for w := range stores {
				s, err := Open(Config{URL: srv.URL, Resolution: time.Minute, Grace: 10 * time.Second, ID: fmt.Sprintf("w%d", w),
					Outlets: []string{"o"}, Now: c.now, LeaseSettle: -1, Retention: 100 * time.Hour, MaxAge: 100 * time.Hour,
					Deliver: func(bk *aggregate.Bucket, skip func(string) bool) {
						delivered += len(bk.Series)
						bk.Done("o", nil)
					}})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				stores[w] = s
			}
			base, _ := srv.Info("used_memory")
			var peak int64
			var cmds, trips uint64
			b.ResetTimer()
			for i := range b.N {
				bstart := start.Add(time.Duration(i) * time.Minute)
				for range tc.handovers {
					for _, s := range stores {
						if err := s.Handover(ctx, appPartials(bstart, tc.series, tc.values, tc.apps)); err != nil {
							b.Fatal(err)
						}
					}
				}
				if m, _ := srv.Info("used_memory"); m-base > peak {
					peak = m - base
				}
				c.set(bstart.Add(time.Minute + 11*time.Second))
				before := stats(stores)
				for _, s := range stores {
					s.Tick(ctx) // one takes the leases and flushes
				}
				stores[0].Tick(ctx) // records the deliveries, deletes the partials
				for _, s := range stores[1:] {
					s.Tick(ctx)
				}
				after := stats(stores)
				_ = before
				cmds, trips = after.RedisCommands, after.RedisRoundTrips
			}
			b.StopTimer()
			if delivered != tc.series*b.N {
				b.Fatalf("delivered %d series, want %d", delivered, tc.series*b.N)
			}
			// Per bucket, including the idle lease rounds of every Tick.
			b.ReportMetric(float64(cmds)/float64(b.N), "cmds/bucket")
			b.ReportMetric(float64(trips)/float64(b.N), "roundtrips/bucket")
			b.ReportMetric(float64(peak)/float64(tc.series), "redis-bytes/series")
		})
	}
}

func stats(stores []*Store) Stats {
	var sum Stats
	for _, s := range stores {
		st := s.Stats()
		sum.RedisCommands += st.RedisCommands
		sum.RedisRoundTrips += st.RedisRoundTrips
	}
	return sum
}

// partials returns one hand-over's states: n counter series with v values.
func partials(start time.Time, n, v int) []*aggregate.StateBucket { return appPartials(start, n, v, 0) }

// appPartials is partials with the series spread over apps apps (none when
// 0): app-K's series are web.0, web.1, … like every other app's.
func appPartials(start time.Time, n, v, apps int) []*aggregate.StateBucket {
	states := make([]*aggregate.State, n)
	names := make([]string, apps) // one string per app, as the aggregator's states share theirs
	for k := range names {
		names[k] = fmt.Sprintf("app-%d", k)
	}
	for i := range states {
		src := i
		if apps > 0 {
			src = i / apps
		}
		st := aggregate.NewState("req", fmt.Sprintf("web.%d", src), "", metric.Counter)
		if apps > 0 {
			st.App = names[i%apps]
		}
		for j := range v {
			st.Add(start.Add(time.Duration(j)*time.Millisecond), 1)
		}
		states[i] = st
	}
	slices.SortFunc(states, aggregate.CompareStates)
	return []*aggregate.StateBucket{{Start: start, Period: time.Minute, States: states}}
}

// BenchmarkHandover100k is one hand-over of a busy app at the series limit:
// 100,000 series of which 10,000 changed since the last hand-over (all 16
// partitions dirty), so every partition's whole partial is re-encoded and
// rewritten. It reports the bytes written to Redis per hand-over.
func BenchmarkHandover100k(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	start := time.Unix(1_700_000_040, 0).UTC()
	s, err := Open(Config{URL: srv.URL, Resolution: time.Minute, Grace: 10 * time.Second, ID: "w",
		Outlets: []string{"o"}, Now: func() time.Time { return start }, Deliver: func(*aggregate.Bucket, func(string) bool) {}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.Handover(ctx, partials(start, 100_000, 1)); err != nil {
		b.Fatal(err)
	}
	changed := partials(start, 10_000, 1)
	bytes0 := s.Stats().HandoverBytes
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		changed = partials(start, 10_000, 1)
		b.StartTimer()
		if err := s.Handover(ctx, changed); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.Stats().HandoverBytes-bytes0)/float64(b.N), "bytes/handover")
}

// BenchmarkCodec encodes and decodes a partial of 1,000 series (counters and
// measures of a few raw values), without and with an app (state version 1
// and 2): the cost of carrying the app in every state.
func BenchmarkCodec(b *testing.B) {
	for _, app := range []string{"", "billing-eu"} {
		states := make([]*aggregate.State, 1000)
		for i := range states {
			kind := []metric.Kind{metric.Counter, metric.Measure}[i%2]
			st := aggregate.NewState("router.service", fmt.Sprintf("web.%d", i), "ms", kind)
			st.App = app
			for v := range 5 {
				st.Add(time.Unix(0, int64(v)), float64(v))
			}
			states[i] = st
		}
		name := "app=none"
		if app != "" {
			name = "app=" + app
		}
		blob, err := encodeStates(nil, states)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("encode/"+name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(blob)))
			for range b.N {
				if _, err := encodeStates(nil, states); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("decode/"+name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(blob)))
			for range b.N {
				if _, err := decodeStates(blob); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
