package main

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/store"
)

// shared is the worker's side of shared state on Redis (REDIS_URL): it
// hands the aggregator's partials to the store every REDIS_HANDOVER, lets the
// store flush the partitions this worker leads, feeds the viewers from the
// app-wide stream of merged buckets, and falls back to local delivery when
// Redis has been down longer than REDIS_FALLBACK_AFTER. See
// docs/shared-state.md.
type shared struct {
	w  *worker
	st *store.Store

	stop func()
	wg   sync.WaitGroup

	mu           sync.Mutex
	nextFallback time.Time // the next fallback warning may be logged then
}

// buildShared opens the store when REDIS_URL is set. Called after the
// outlets are built, before the inputs.
func (w *worker) buildShared() error {
	if w.cfg.RedisURL == "" {
		return nil
	}
	names := make([]string, len(w.outlets))
	for i, o := range w.outlets {
		names[i] = o.name
	}
	st, err := store.Open(store.Config{
		URL: w.cfg.RedisURL, TLSSkipVerify: w.cfg.RedisTLSSkipVerify, Partitions: w.cfg.RedisPartitions,
		Resolution: w.cfg.MetricsResolution, Grace: w.cfg.MetricsGrace,
		Outlets: names, Deliver: w.deliverShared, Logger: w.log, Now: w.opt.now, OpTimeout: w.opt.redisTimeout,
		LeaseTTL: w.cfg.RedisLeaseTTL,
	})
	if err != nil {
		return err
	}
	w.shared = &shared{w: w, st: st}
	w.sharedMetrics()
	return nil
}

// deliverShared hands a bucket the store merged to every outlet that does
// not have it yet. The viewers get it from the feed, like every other
// worker's.
func (w *worker) deliverShared(b *aggregate.Bucket, skip func(string) bool) {
	for _, o := range w.outlets {
		if !skip(o.name) {
			o.Write(b)
		}
	}
}

// sharedFrameSeen is the drain's SharedSeen, or nil without Redis.
func (w *worker) sharedFrameSeen() func(string) bool {
	if w.shared == nil {
		return nil
	}
	return func(id string) bool {
		dup, _ := w.shared.st.FrameSeen(context.Background(), id, drain.DefaultDedupAge)
		return dup
	}
}

// drainWorkers is the drain's parsing goroutines: the default (one per
// CPU) without Redis; with it, two per CPU, so that the Frame-Id round trip
// each body waits for overlaps with other bodies' parsing (measured in
// BenchmarkIngestRedis: four per CPU cost more in lock contention than they
// saved).
func (w *worker) drainWorkers() int {
	if w.shared == nil {
		return 0
	}
	return 2 * runtime.GOMAXPROCS(0)
}

// startShared starts the hand-over, flush and feed loops. The hot path never
// waits for them.
func (w *worker) startShared() {
	s := w.shared
	if s == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(w.cfg.RedisHandover)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.handover(ctx)
			}
		}
	}()
	go func() {
		defer s.wg.Done()
		s.st.Run(ctx, w.opt.flushEvery)
	}()
	// The viewers (registered before run or by opt.ready) see the feed of
	// every worker's merged buckets.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.st.Feed(ctx, func(b *aggregate.Bucket) {
			for _, v := range w.viewers {
				v(b)
			}
		})
	}()
}

// handover takes the aggregator's partials to Redis; when Redis has been
// down longer than REDIS_FALLBACK_AFTER it sends the buckets that are due
// itself.
func (s *shared) handover(ctx context.Context) {
	w := s.w
	if err := s.st.Handover(ctx, w.agg.TakeStates()); err == nil {
		return
	}
	since := s.st.DownSince()
	now := w.opt.now()
	if since.IsZero() || now.Sub(since) < w.cfg.RedisFallbackAfter {
		return
	}
	due := now.Add(-w.cfg.MetricsResolution - w.cfg.MetricsGrace)
	bs := s.st.TakeUnsent(due)
	if len(bs) == 0 {
		return
	}
	s.mu.Lock()
	logIt := !now.Before(s.nextFallback)
	if logIt {
		s.nextFallback = now.Add(store.LogEvery)
	}
	s.mu.Unlock()
	if logIt {
		w.log.Error("Redis unreachable beyond REDIS_FALLBACK_AFTER: sending due buckets from this worker alone (their series are not sent again from Redis)",
			"down_since", since, "buckets", len(bs))
	}
	w.write(stateBuckets(bs))
}

// flushAtExit hands every open partial to Redis (or, without Redis or when
// it does not answer, sends every open bucket from here).
func (w *worker) flushAtExit(ctx context.Context) {
	s := w.shared
	if s == nil {
		w.write(w.agg.FlushAll())
		return
	}
	s.stop()
	s.wg.Wait()
	hctx, cancel := context.WithTimeout(ctx, max(time.Second, w.cfg.ShutdownTimeout/3))
	defer cancel()
	err := s.st.Handover(hctx, w.agg.TakeStates())
	if err == nil {
		w.log.Info("shutdown: open buckets handed to Redis for the next worker")
		return
	}
	bs := s.st.TakeUnsent(time.Unix(1<<62, 0))
	w.log.Error("shutdown: Redis does not answer; sending this worker's open buckets itself (their values may be partial)",
		"err", err, "buckets", len(bs))
	w.write(stateBuckets(bs))
}

// releaseShared records what the outlets settled and gives up the leases.
// Call it after the outlets are closed.
func (w *worker) releaseShared(ctx context.Context) error {
	s := w.shared
	if s == nil {
		return nil
	}
	// The outlets may have used up the shutdown time waiting for a receiver
	// that is down: recording their verdicts and releasing the leases still
	// gets a moment of its own, so that the next worker resends at once
	// instead of after the lease TTL.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	err := s.st.Release(rctx)
	if cerr := s.st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: release: %w", err)
	}
	return nil
}

// stateBuckets turns merged states into buckets.
func stateBuckets(bs []*aggregate.StateBucket) []*aggregate.Bucket {
	out := make([]*aggregate.Bucket, len(bs))
	for i, b := range bs {
		out[i] = b.Bucket()
	}
	return out
}

// sharedMetrics registers the store's volume counters and gauges; its drop
// counters are in dropCounters (sharedDrops).
func (w *worker) sharedMetrics() {
	s := selfMetrics{w.reg}
	st := func() store.Stats { return w.shared.st.Stats() }
	u := func(f func(store.Stats) uint64) func() int64 { return func() int64 { return int64(f(st())) } }
	s.counter("worker.redis.handover_blobs", u(func(x store.Stats) uint64 { return x.HandoverBlobs }))
	s.counter("worker.redis.handover_series", u(func(x store.Stats) uint64 { return x.HandoverStates }))
	s.counter("worker.redis.handover_errors", u(func(x store.Stats) uint64 { return x.HandoverErrors }))
	s.counter("worker.redis.buckets_flushed", u(func(x store.Stats) uint64 { return x.BucketsFlushed }))
	s.counter("worker.redis.buckets_resent", u(func(x store.Stats) uint64 { return x.BucketsResent }))
	s.counter("worker.redis.buckets_done", u(func(x store.Stats) uint64 { return x.BucketsDone }))
	s.counter("worker.redis.flush_errors", u(func(x store.Stats) uint64 { return x.FlushErrors }))
	s.counter("worker.redis.frame_errors", u(func(x store.Stats) uint64 { return x.FrameErrors }))
	s.counter("worker.redis.feed_buckets", u(func(x store.Stats) uint64 { return x.FeedBuckets }))
	s.counter("worker.redis.feed_errors", u(func(x store.Stats) uint64 { return x.FeedErrors }))
	s.counter("worker.redis.fallback_buckets", u(func(x store.Stats) uint64 { return x.FallbackBuckets }))
	s.counter("worker.redis.commands", u(func(x store.Stats) uint64 { return x.RedisCommands }))
	s.counter("worker.redis.fenced", u(func(x store.Stats) uint64 { return x.Fenced }))
	s.counter("worker.redis.leases_lost", u(func(x store.Stats) uint64 { return x.LeasesLost }))
	s.counter("worker.redis.withdrawn", u(func(x store.Stats) uint64 { return x.Withdrawn }))
	s.counter("worker.redis.resends", u(func(x store.Stats) uint64 { return x.Resends }))
	s.counter("worker.redis.data_losses", u(func(x store.Stats) uint64 { return x.DataLosses }))
	s.counter("worker.redis.repaired_series", u(func(x store.Stats) uint64 { return x.RepairedSeries }))
	s.counter("worker.redis.fallback_late", u(func(x store.Stats) uint64 { return x.FallbackLate }))
	s.counter("worker.redis.totals_pruned", u(func(x store.Stats) uint64 { return x.TotalsPruned }))
	s.counter("worker.redis.flush_waits", u(func(x store.Stats) uint64 { return x.FlushWaits }))
	s.counter("worker.redis.feed_trimmed", u(func(x store.Stats) uint64 { return x.FeedTrimmed }))
	for _, r := range store.Reasons() {
		s.counter("worker.redis.errors."+r, func() int64 { return int64(st().Errors[r]) })
	}
	s.gauge("worker.redis.unsent_series", func() int64 { return int64(st().UnsentStates) })
	s.gauge("worker.redis.leases", func() int64 { return int64(st().Leases) })
}

// sharedDrops lists the store's drop counters, read from st.
func sharedDrops(st func() store.Stats) []dropCounter {
	var cs []dropCounter
	c := func(metric, field string, read func(store.Stats) uint64) {
		cs = append(cs, dropCounter{metric: metric, field: "store.Stats." + field, read: func() int64 { return int64(read(st())) }})
	}
	c("worker.redis.late_series", "LateStates", func(x store.Stats) uint64 { return x.LateStates })
	c("worker.redis.late_measurements", "LateMeasurements", func(x store.Stats) uint64 { return x.LateMeasurements })
	c("worker.redis.buckets_abandoned", "BucketsAbandoned", func(x store.Stats) uint64 { return x.BucketsAbandoned })
	c("worker.redis.outlet_refused", "OutletRefused", func(x store.Stats) uint64 { return x.OutletRefused })
	c("worker.redis.series_conflicts", "SeriesConflicts", func(x store.Stats) uint64 { return x.SeriesConflicts })
	c("worker.redis.bad_blobs", "BadBlobs", func(x store.Stats) uint64 { return x.BadBlobs })
	c("worker.redis.frame_duplicates", "FramesDuplicate", func(x store.Stats) uint64 { return x.FramesDuplicate })
	c("worker.redis.data_loss_series", "DataLossSeries", func(x store.Stats) uint64 { return x.DataLossSeries })
	c("worker.redis.fallback_excluded", "FallbackExcluded", func(x store.Stats) uint64 { return x.FallbackExcluded })
	c("worker.redis.feed_dropped", "FeedDropped", func(x store.Stats) uint64 { return x.FeedDropped })
	return cs
}
