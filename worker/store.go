package main

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/store"
	"github.com/dynometrics/dynometrics/internal/throttle"
	"github.com/redis/go-redis/v9"
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

	fallbackLog *throttle.Logger // the fallback warning, at most once per store.LogEvery
}

// buildShared opens the store when REDIS_URL is set. Called after the
// outlets are built, before the inputs.
func (w *worker) buildShared() error {
	if w.cfg.Redis.URL == "" {
		return nil
	}
	names := make([]string, len(w.outlets))
	for i, o := range w.outlets {
		names[i] = o.name
	}
	// go-redis logs through one process-wide logger (a dial error per
	// connection attempt while Redis is unreachable): through the worker's
	// throttled logger, at most once a minute per message.
	redis.SetLogger(throttle.RedisLogger{L: throttle.New(w.log, store.LogEvery, w.opt.now)})
	st, err := store.Open(store.Config{
		URL: w.cfg.Redis.URL, TLSSkipVerify: w.cfg.Redis.TLSSkipVerify, Cluster: w.cfg.Redis.Cluster, Balance: w.cfg.Redis.Balance, Partitions: w.cfg.Redis.Partitions,
		Resolution: w.cfg.Buckets.Resolution, Grace: w.cfg.Buckets.Grace,
		Outlets: names, Deliver: w.deliverShared, Logger: w.log, Now: w.opt.now, OpTimeout: w.opt.redisTimeout,
		LeaseTTL: w.cfg.Redis.LeaseTTL,
	})
	if err != nil {
		return err
	}
	w.shared = &shared{w: w, st: st, fallbackLog: throttle.New(w.log, store.LogEvery, w.opt.now)}
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
func (w *worker) sharedFrameSeen() func(app, id string) bool {
	if w.shared == nil {
		return nil
	}
	return func(app, id string) bool {
		dup, _ := w.shared.st.FrameSeen(context.Background(), app, id, drain.DefaultDedupAge)
		return dup
	}
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
	s.wg.Go(func() {
		t := time.NewTicker(w.cfg.Redis.Handover)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.handover(ctx)
			}
		}
	})
	s.wg.Go(func() { s.st.Run(ctx, w.opt.flushEvery) })
	// The viewers (registered before run or by opt.ready) see the feed of
	// every worker's merged buckets.
	s.wg.Go(func() {
		s.st.Feed(ctx, func(b *aggregate.Bucket) {
			for _, v := range w.viewers {
				v(b)
			}
		})
	})
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
	if since.IsZero() || now.Sub(since) < w.cfg.Redis.FallbackAfter {
		return
	}
	due := now.Add(-w.cfg.Buckets.Resolution - w.cfg.Buckets.Grace)
	// The lines that arrived while the failed hand-over waited for Redis
	// (up to its timeout) belong in what the fallback sends: without them a
	// due bucket went out short, and the rest of it, handed over later, was
	// left out in Redis as the fallback's.
	s.st.Merge(w.agg.TakeStates())
	bs := s.st.TakeUnsent(due)
	if len(bs) == 0 {
		return
	}
	s.fallbackLog.Error("Redis unreachable beyond REDIS_FALLBACK_AFTER: sending due buckets from this worker alone (their series are not sent again from Redis)",
		"down_since", since, "buckets", len(bs))
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
	if err := cmp.Or(s.st.Release(rctx), s.st.Close()); err != nil { // Close whatever Release did
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
