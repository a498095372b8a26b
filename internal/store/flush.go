package store

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/outlet"
	"github.com/redis/go-redis/v9"
)

// Retry delays of a bucket some outlet did not accept: doubled per attempt
// from minRetry up to maxRetry.
const (
	minRetry = 2 * time.Second
	maxRetry = time.Minute
)

// flight is one (partition, bucket) handed to the outlets and not yet
// settled by all of them.
type flight struct {
	key      pkey
	waiting  map[string]bool // outlets that have not settled it
	ok       []string        // outlets that accepted it
	refused  []string        // outlets that refused it for good
	failed   bool            // some outlet dropped it for a reason a resend may fix
	lastErr  error
	resend   bool
	attempts int
}

type retryState struct {
	at       time.Time
	attempts int
}

// Run flushes, every interval, the due buckets of the partitions whose lease
// this worker holds or can take, until ctx ends. Call Release afterwards,
// once the outlets are closed.
func (s *Store) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.Tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick is one round of Run: record what the outlets settled, renew or take
// leases, and flush every due bucket of the partitions held. Exported for
// tests that drive the clock.
func (s *Store) Tick(ctx context.Context) {
	s.processSettled(ctx)
	held, err := s.leases(ctx)
	if err != nil {
		s.stats.flushErrors.Add(1)
		s.failed("leases", err, "store: cannot renew or take partition leases; retrying")
		return
	}
	if len(held) == 0 {
		return
	}
	now := s.cfg.Now()
	cutoff := dueCutoff(now, s.cfg.Resolution, s.cfg.Grace)
	cmds, err := s.runPipe(ctx, func(pipe redis.Pipeliner) {
		for _, p := range held {
			pipe.ZRangeByScore(ctx, s.keys(p).pending(), &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(cutoff, 10)})
		}
	})
	if err != nil {
		s.stats.flushErrors.Add(1)
		s.failed("pending", err, "store: cannot list due buckets; retrying")
		return
	}
	for i, p := range held {
		starts, err := cmds[i].(*redis.StringSliceCmd).Result()
		if err != nil {
			continue
		}
		for _, str := range starts {
			start, err := strconv.ParseInt(str, 10, 64)
			if err != nil {
				continue
			}
			k := pkey{p, start}
			s.mu.Lock()
			_, busy := s.flights[k]
			r := s.retry[k]
			s.mu.Unlock()
			if busy || now.Before(r.at) {
				continue
			}
			if err := s.flush(ctx, k, r.attempts, now); err != nil {
				s.stats.flushErrors.Add(1)
				s.failed("flush", err, "store: flush failed; retrying", "bucket", time.Unix(start, 0).UTC())
				return
			}
		}
	}
}

// dueCutoff returns the start of the newest bucket whose end plus grace has
// passed at now.
func dueCutoff(now time.Time, res, grace time.Duration) int64 {
	sec := now.Add(-res - grace).Unix()
	r := int64(res / time.Second)
	m := sec % r
	if m < 0 {
		m += r
	}
	return sec - m
}

// leases renews the leases held and tries to take the others; it returns
// the partitions held for at least LeaseSettle, ascending: a worker that
// just took a partition over leaves the previous holder, whose Redis
// connection may have stalled, time to record the deliveries its outlets
// settled meanwhile, so that it does not resend them.
func (s *Store) leases(ctx context.Context) ([]int, error) {
	ttl := s.cfg.LeaseTTL.Milliseconds()
	cmds, err := s.runPipe(ctx, func(pipe redis.Pipeliner) {
		for p := range s.cfg.Partitions {
			evalsha(ctx, pipe, leaseScript, []string{s.keys(p).lease()}, s.cfg.ID, ttl)
		}
	})
	if len(cmds) != s.cfg.Partitions {
		return nil, err
	}
	var held []int
	var firstErr error
	for p, c := range cmds {
		n, err := c.(*redis.Cmd).Int64()
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if err == nil && n == 1 {
			held = append(held, p)
		}
	}
	now := s.cfg.Now()
	ready := held[:0:0]
	s.mu.Lock()
	for p := range s.held {
		if !slices.Contains(held, p) {
			delete(s.held, p)
		}
	}
	for _, p := range held {
		since, ok := s.held[p]
		if !ok {
			since = now
			s.held[p] = now
		}
		if now.Sub(since) >= s.cfg.LeaseSettle {
			ready = append(ready, p)
		}
	}
	s.mu.Unlock()
	if firstErr != nil && len(held) == 0 {
		return nil, s.redact(firstErr)
	}
	return ready, nil
}

// flush closes one (partition, bucket), merges its partials, computes its
// totals and hands it to the outlets that do not have it yet.
func (s *Store) flush(ctx context.Context, k pkey, attempts int, now time.Time) error {
	keys := s.keys(k.p)
	ttl := int64(s.cfg.Retention / time.Second)
	cmds, err := s.runPipe(ctx, func(pipe redis.Pipeliner) {
		evalsha(ctx, pipe, closeScript, []string{keys.closed(k.start), keys.parts(k.start)}, ttl)
		pipe.SMembers(ctx, keys.done(k.start))
	})
	if err != nil {
		return err
	}
	raw, err := cmds[0].(*redis.Cmd).StringSlice()
	if err != nil {
		return err
	}
	done, err := cmds[1].(*redis.StringSliceCmd).Result()
	if err != nil {
		return err
	}
	start := time.Unix(k.start, 0).UTC()
	if now.Sub(start.Add(s.cfg.Resolution)) > s.cfg.MaxAge {
		s.stats.bucketsAbandoned.Add(1)
		s.log.Error("store: bucket older than the age bound was never delivered; deleting it",
			"bucket", start, "partition", k.p, "delivered_to", done)
		return s.cleanup(ctx, k)
	}
	states := s.merge(raw)
	if len(states) == 0 || s.allDone(done) {
		return s.cleanup(ctx, k)
	}
	totals, err := s.totals(ctx, k, states)
	if err != nil {
		return err
	}
	if err := s.publish(ctx, k, states); err != nil {
		s.stats.feedErrors.Add(1)
		s.failed("feed", err, "store: cannot append a merged bucket to the feed (viewers miss it)")
	}

	b := &aggregate.Bucket{Start: start, Period: s.cfg.Resolution, Series: make([]aggregate.Series, len(states))}
	for i, st := range states {
		b.Series[i] = st.Series()
		if st.Kind == metric.Measure {
			b.Series[i].State = st
		}
		b.Series[i].Totals = totals[i]
	}
	skip := func(name string) bool { return slices.Contains(done, name) }
	fl := &flight{key: k, waiting: make(map[string]bool), attempts: attempts, resend: attempts > 0 || len(done) > 0}
	for _, o := range s.cfg.Outlets {
		if !skip(o) {
			fl.waiting[o] = true
		}
	}
	s.mu.Lock()
	s.flights[k] = fl
	s.mu.Unlock()
	b.Done = func(name string, err error) { s.settle(fl, name, err) }
	s.stats.bucketsFlushed.Add(1)
	s.stats.flushedSeries.Add(uint64(len(states)))
	if fl.resend {
		s.stats.bucketsResent.Add(1)
	}

	s.cfg.Deliver(b, skip)
	return nil
}

func (s *Store) allDone(done []string) bool {
	for _, o := range s.cfg.Outlets {
		if !slices.Contains(done, o) {
			return false
		}
	}
	return true
}

// merge decodes the partials (id, blob pairs) and merges them in id order,
// so that every merge of the same partials gives identical values.
func (s *Store) merge(raw []string) []*aggregate.State {
	type part struct{ id, data string }
	parts := make([]part, 0, len(raw)/2)
	for i := 0; i+1 < len(raw); i += 2 {
		parts = append(parts, part{raw[i], raw[i+1]})
	}
	slices.SortFunc(parts, func(a, b part) int { return strings.Compare(a.id, b.id) })
	m := make(map[skey]*aggregate.State)
	for _, p := range parts {
		states, err := decodeStates([]byte(p.data))
		if err != nil {
			s.stats.badBlobs.Add(1)
			s.warn("blob", "store: a partial in Redis does not decode; skipped", "err", err, "id", p.id)
			continue
		}
		for _, st := range states {
			sk := skey{st.Name, st.Source}
			if have := m[sk]; have != nil {
				if have.Merge(st) != nil {
					s.stats.seriesConflicts.Add(1)
				}
				continue
			}
			m[sk] = st
		}
	}
	return sortedStates(m)
}

// totals advances (once per bucket) and returns the running totals of the
// states, nil for kinds without totals.
func (s *Store) totals(ctx context.Context, k pkey, states []*aggregate.State) ([]*aggregate.Totals, error) {
	keys := s.keys(k.p)
	args := []any{k.start, int64(s.cfg.Retention / time.Second), int64(s.cfg.TotalsTTL / time.Second)}
	var idx []int
	for i, st := range states {
		if !wantsTotals(st.Kind) {
			continue
		}
		ser := st.Series()
		args = append(args, seriesField(st), strconv.FormatFloat(ser.Sum, 'g', -1, 64), strconv.FormatInt(ser.Count, 10))
		idx = append(idx, i)
	}
	out := make([]*aggregate.Totals, len(states))
	if len(idx) == 0 {
		return out, nil
	}
	cmds, err := s.runPipe(ctx, func(pipe redis.Pipeliner) {
		evalsha(ctx, pipe, totalsScript, []string{keys.totals(), keys.tot(k.start)}, args...)
	})
	if err != nil {
		return nil, err
	}
	rec, err := cmds[0].(*redis.Cmd).Text()
	if err != nil {
		return nil, err
	}
	lines := strings.Split(rec, "\n")
	if len(lines) != len(idx) {
		// A record from different partials cannot happen (the bucket is
		// closed before its totals are computed); refuse rather than mislabel.
		return nil, errors.New("store: recorded totals do not match the bucket's series")
	}
	for j, line := range lines {
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, errors.New("store: malformed totals record")
		}
		st, err1 := strconv.ParseInt(f[0], 10, 64)
		sum, err2 := strconv.ParseFloat(f[1], 64)
		cnt, err3 := strconv.ParseFloat(f[2], 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, errors.New("store: malformed totals record")
		}
		out[idx[j]] = &aggregate.Totals{Start: time.Unix(st, 0).UTC(), Sum: sum, Count: cnt}
	}
	return out, nil
}

// settle is Bucket.Done: it records one outlet's verdict; the flush loop
// writes it to Redis. It does not block.
func (s *Store) settle(fl *flight, name string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !fl.waiting[name] {
		return // an outlet we did not wait for, or a second call
	}
	delete(fl.waiting, name)
	switch {
	case err == nil:
		fl.ok = append(fl.ok, name)
	case errors.Is(err, outlet.ErrPermanent):
		fl.refused = append(fl.refused, name)
	default:
		fl.failed = true
		fl.lastErr = err
	}
	if len(fl.waiting) == 0 {
		delete(s.flights, fl.key)
		s.settled = append(s.settled, fl)
	}
}

// processSettled records the outlets' verdicts: delivered outlets join the
// bucket's delivered set; a bucket every outlet settled for good is cleaned
// up; one an outlet dropped is retried later.
func (s *Store) processSettled(ctx context.Context) {
	s.mu.Lock()
	settled := s.settled
	s.settled = nil
	s.mu.Unlock()
	for i, fl := range settled {
		keys := s.keys(fl.key.p)
		fin := append(slices.Clone(fl.ok), fl.refused...)
		s.stats.outletRefused.Add(uint64(len(fl.refused)))
		_, err := s.runPipe(ctx, func(pipe redis.Pipeliner) {
			if len(fin) > 0 {
				members := make([]any, len(fin))
				for i, o := range fin {
					members[i] = o
				}
				pipe.SAdd(ctx, keys.done(fl.key.start), members...)
				pipe.Expire(ctx, keys.done(fl.key.start), s.cfg.Retention)
			}
			if !fl.failed {
				evalsha(ctx, pipe, cleanupScript,
					[]string{keys.parts(fl.key.start), keys.done(fl.key.start), keys.pending(), keys.fed(fl.key.start), keys.tot(fl.key.start)}, fl.key.start)
			}
		})
		if err != nil {
			// Keep the rest for the next round.
			s.mu.Lock()
			s.settled = append(settled[i:], s.settled...)
			s.mu.Unlock()
			s.stats.flushErrors.Add(1)
			s.failed("settle", err, "store: cannot record a delivered bucket; retrying")
			return
		}
		s.mu.Lock()
		if fl.failed {
			d := min(maxRetry, minRetry<<min(fl.attempts, 10))
			s.retry[fl.key] = retryState{at: s.cfg.Now().Add(d), attempts: fl.attempts + 1}
		} else {
			delete(s.retry, fl.key)
		}
		s.mu.Unlock()
		if fl.failed {
			s.warn("undelivered", "store: an outlet did not take a bucket; it stays in Redis and is resent",
				"err", fl.lastErr, "bucket", time.Unix(fl.key.start, 0).UTC())
		} else {
			s.stats.bucketsDone.Add(1)
		}
	}
}

// cleanup deletes a settled (partition, bucket).
func (s *Store) cleanup(ctx context.Context, k pkey) error {
	keys := s.keys(k.p)
	_, err := s.runPipe(ctx, func(pipe redis.Pipeliner) {
		evalsha(ctx, pipe, cleanupScript, []string{keys.parts(k.start), keys.done(k.start), keys.pending(), keys.fed(k.start), keys.tot(k.start)}, k.start)
	})
	if err == nil {
		s.mu.Lock()
		delete(s.retry, k)
		s.mu.Unlock()
		s.stats.bucketsDone.Add(1)
	}
	return err
}

// Release records what the outlets settled (call it after closing them) and
// gives up this worker's leases, so that another worker takes over at once.
// Buckets some outlet did not take stay in Redis for the next worker.
func (s *Store) Release(ctx context.Context) error {
	s.processSettled(ctx)
	s.mu.Lock()
	held := make([]int, 0, len(s.held))
	for p := range s.held {
		held = append(held, p)
	}
	clear(s.held)
	s.mu.Unlock()
	_, err := s.runPipe(ctx, func(pipe redis.Pipeliner) {
		for _, p := range held {
			evalsha(ctx, pipe, releaseScript, []string{s.keys(p).lease()}, s.cfg.ID)
		}
	})
	return err
}
