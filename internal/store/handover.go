package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/redis/go-redis/v9"
)

// dropClean is how long after a bucket's deadline (end plus grace) a
// partial with nothing unwritten is kept: by then the flusher has closed the
// bucket. A value arriving later for that bucket starts a new partial under
// a new field id, which is refused as late once the bucket is closed.
const dropClean = time.Minute

// Handover merges the partial states taken from the aggregator (see
// aggregate.Aggregator.TakeStates) into this worker's partial of each
// (partition, bucket) and writes every partial that changed to Redis, whole,
// in one round trip. Store takes ownership of the states. A write that
// fails (Redis down or slow) is simply made again, with whatever was added
// meanwhile, at the next call; the error says why. What Redis refuses
// because the bucket was already flushed is counted as late
// (Stats.LateStates, LateMeasurements) and dropped.
//
// While Redis is known to be down, Handover first checks that it answers
// (one PING) and otherwise only merges. Not for concurrent use with itself.
func (s *Store) Handover(ctx context.Context, taken []*aggregate.StateBucket) error {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	s.mergeLocked(taken)
	return s.writeLocked(ctx)
}

// Merge merges the partial states taken from the aggregator into this
// worker's partials without writing them: before TakeUnsent, so that the
// lines that arrived while a failed hand-over waited for Redis are in what
// the fallback sends. Store takes ownership of the states.
func (s *Store) Merge(taken []*aggregate.StateBucket) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	s.mergeLocked(taken)
}

// mergeLocked merges taken into s.cum. A state of a bucket this worker's
// fallback already sent is late (the bucket went out): counted, dropped.
func (s *Store) mergeLocked(taken []*aggregate.StateBucket) {
	var lateStates, lateMeasurements int64
	for _, b := range taken {
		start := b.Start.Unix()
		for _, st := range b.States {
			k := pkey{partition(st.App, st.Name, st.Source, s.cfg.Partitions), start}
			if _, sent := s.fellBack[k]; sent {
				lateStates++
				lateMeasurements += st.Count()
				continue
			}
			c := s.cum[k]
			if c == nil {
				c = &partial{id: s.cfg.ID + ":" + fmt.Sprintf("%016x", s.seq.Add(1)),
					states: make(map[skey]*aggregate.State), enc: make(map[skey][]byte), dirty: make(map[skey]int64)}
				s.cum[k] = c
			}
			sk := keyOf(st)
			c.dirty[sk] += st.Count()
			delete(c.enc, sk)
			if have := c.states[sk]; have != nil {
				if err := have.Merge(st); err != nil {
					// Same series, other kind or unit: keep the first,
					// as the aggregator does within a bucket.
					s.stats.SeriesConflicts.Add(1)
					c.dirty[sk] -= st.Count()
				}
				continue
			}
			c.states[sk] = st
		}
	}
	s.late(lateStates, lateMeasurements, "store: partial states for buckets this worker's fallback already sent: counted late, not sent")
}

// writeLocked writes every partial that changed (and the fallback records)
// to Redis in one round trip; see Handover.
func (s *Store) writeLocked(ctx context.Context) error {
	now := s.cfg.Now()
	for k, c := range s.cum {
		deadline := time.Unix(k.start, 0).Add(s.cfg.Resolution + s.cfg.Grace)
		if len(c.dirty) == 0 && !c.clean.IsZero() && now.Sub(deadline) > dropClean && now.Sub(c.clean) > dropClean {
			delete(s.cum, k)
		}
	}
	if !s.downSince.IsZero() {
		if err := s.Ping(ctx); err != nil {
			return s.handoverFailed(err)
		}
	}
	if err := s.checkMarker(ctx, now); err != nil {
		return s.handoverFailed(err)
	}
	if s.repairFr {
		if err := s.repairFrames(ctx); err != nil {
			s.failed("frames", err, "store: cannot write the Frame-Ids again after Redis lost its data; retrying at the next hand-over")
		} else {
			s.repairFr = false
		}
	}
	type write struct {
		k    pkey
		c    *partial
		data []byte
	}
	var writes []write
	for k, c := range s.cum {
		if len(c.dirty) == 0 {
			continue
		}
		data, err := c.encode()
		if err != nil {
			return fmt.Errorf("store: encode partials: %w", err)
		}
		writes = append(writes, write{k, c, data})
	}
	fbs := slices.Collect(maps.Keys(s.fellBack))
	if len(writes) == 0 && len(fbs) == 0 {
		return nil
	}
	slices.SortFunc(writes, func(a, b write) int {
		return cmp.Or(cmp.Compare(a.k.start, b.k.start), cmp.Compare(a.k.p, b.k.p))
	})
	ttl := int64(s.cfg.Retention / time.Second)
	// This worker is alive and clean once these writes succeed (see
	// Store.owing).
	cmds, err := s.runPipe(ctx, func(pipe redis.Pipeliner) {
		pipe.Set(ctx, s.aliveKey(s.cfg.ID), "1", s.cfg.LeaseTTL)
		pipe.Set(ctx, s.cleanKey(s.cfg.ID), "1", s.cfg.LeaseTTL)
		pipe.SAdd(ctx, s.workersKey(), s.cfg.ID)
		for _, w := range writes {
			k := s.keys(w.k.p)
			evalsha(ctx, pipe, appendScript, []string{k.closed(w.k.start), k.parts(w.k.start), k.pending(), k.upto()},
				w.c.id, w.data, w.k.start, ttl)
		}
		for _, fk := range fbs {
			k, f := s.keys(fk.p), s.fellBack[fk]
			evalsha(ctx, pipe, fallbackScript, []string{k.closed(fk.start), k.parts(fk.start), k.pending(), k.fb(fk.start)},
				f.id, f.series, fk.start, ttl)
		}
	})
	if err != nil && reasonOf(err) == 1 { // ReasonOOM
		// Redis answers but refuses writes: say "alive, owing" with the
		// commands Redis still runs under OOM (PEXPIRE, DEL), so that no
		// flusher closes a bucket whose partial this worker holds unwritten.
		_, _ = s.runPipe(ctx, func(pipe redis.Pipeliner) {
			pipe.PExpire(ctx, s.aliveKey(s.cfg.ID), s.cfg.LeaseTTL)
			pipe.Del(ctx, s.cleanKey(s.cfg.ID))
		})
	}
	if len(cmds) != 3+len(writes)+len(fbs) {
		return s.handoverFailed(err)
	}
	cmds = cmds[3:]
	var firstErr error
	for i, fk := range fbs {
		n, cerr := cmds[len(writes)+i].(*redis.Cmd).Int64()
		switch {
		case cerr != nil:
			firstErr = cmp.Or(firstErr, cerr)
			continue
		case n == 0:
			s.stats.FallbackLate.Add(1)
			s.warn("fallback-late", "store: a bucket this worker sent itself while Redis was down had already been sent from Redis: its series may have gone out twice",
				"bucket", time.Unix(fk.start, 0).UTC(), "partition", fk.p)
		}
		delete(s.fellBack, fk)
	}
	cmds = cmds[:len(writes)]
	var lateStates, lateMeasurements int64
	var lateBuckets []int64
	for i, cmd := range cmds {
		w := writes[i]
		n, cerr := cmd.(*redis.Cmd).Int64()
		switch {
		case cerr != nil:
			firstErr = cmp.Or(firstErr, cerr)
		case n == 0:
			lateStates += int64(len(w.c.dirty))
			for _, m := range w.c.dirty {
				lateMeasurements += m
			}
			if !slices.Contains(lateBuckets, w.k.start) {
				lateBuckets = append(lateBuckets, w.k.start)
			}
			delete(s.cum, w.k)
		default:
			s.stats.HandoverBlobs.Add(1)
			s.stats.HandoverStates.Add(uint64(len(w.c.states)))
			s.stats.HandoverBytes.Add(uint64(len(w.data)))
			clear(w.c.dirty)
			w.c.clean = now
		}
	}
	s.late(lateStates, lateMeasurements, "store: partial states for buckets already flushed: counted late, not sent", "buckets_unix", lateBuckets)
	if firstErr != nil {
		return s.handoverFailed(s.redact(firstErr))
	}
	if !s.downSince.IsZero() {
		s.log.Info("store: Redis answers again; partials handed over", "down_for", now.Sub(s.downSince).Round(time.Second))
		s.holdFlushes()
	}
	s.downSince = time.Time{}
	return nil
}

// checkMarker reads the data marker when this worker holds partials of
// open buckets. When it changed (Redis lost its data), every partial of a
// bucket whose deadline has not passed is marked for a whole rewrite, so
// that what was handed over before the loss counts once again; partials of
// buckets already due are not rewritten (they may have been delivered
// before the loss: rewriting them could send them twice), and their series
// are counted in Stats.DataLossSeries. Called with hmu held.
func (s *Store) checkMarker(ctx context.Context, now time.Time) error {
	cutoff := dueCutoff(now, s.cfg.Resolution, s.cfg.Grace)
	open := slices.ContainsFunc(slices.Collect(maps.Keys(s.cum)), func(k pkey) bool { return k.start > cutoff })
	if !open && s.marker != "" {
		return nil
	}
	cand := fmt.Sprintf("%s:%d", s.cfg.ID, time.Now().UnixNano())
	v, err := s.eval(ctx, markerScript, []string{s.markerKey()}, cand).Text()
	if err != nil {
		return err
	}
	if s.marker == "" || v == s.marker {
		s.marker = v
		return nil
	}
	s.marker = v
	var rewritten, lost int
	for k, c := range s.cum {
		if k.start <= cutoff {
			lost += len(c.states)
			continue
		}
		for sk, st := range c.states {
			c.dirty[sk] = st.Count()
			rewritten++
		}
	}
	s.stats.DataLosses.Add(1)
	s.repairFr = true
	s.holdFlushes()
	s.stats.DataLossSeries.Add(uint64(lost))
	s.stats.RepairedSeries.Add(uint64(rewritten))
	s.log.Error("store: Redis lost its data (its marker changed: a restart without persistence, FLUSHALL or a failover); writing this worker's open partials again",
		"rewritten_series", rewritten, "due_series_not_rewritten", lost)
	return nil
}

// late counts partial states refused as late (their bucket went out) and
// logs them, when there are any.
func (s *Store) late(states, measurements int64, msg string, args ...any) {
	if states == 0 {
		return
	}
	s.stats.LateStates.Add(uint64(states))
	s.stats.LateMeasurements.Add(uint64(measurements))
	s.warn("late", msg, append([]any{"series", states, "measurements", measurements}, args...)...)
}

func (s *Store) handoverFailed(err error) error {
	s.stats.HandoverErrors.Add(1)
	if s.downSince.IsZero() {
		s.downSince = s.cfg.Now()
	}
	n := 0
	for _, c := range s.cum {
		n += len(c.dirty)
	}
	s.failed("handover", err, "store: cannot hand partial states to Redis; keeping them and retrying",
		"unsent_series", n, "down_since", s.downSince)
	return fmt.Errorf("store: hand-over: %w", err)
}

// encode returns the partial in encodeStates' form (states in no
// particular order), encoding again only the states that changed since the
// last call.
func (c *partial) encode() ([]byte, error) {
	keys := make([]skey, 0, len(c.states))
	size := 16
	for k, st := range c.states {
		keys = append(keys, k)
		b, ok := c.enc[k]
		if !ok {
			var err error
			if b, err = st.MarshalBinary(); err != nil {
				return nil, err
			}
			c.enc[k] = b
		}
		size += len(b) + binary.MaxVarintLen32
	}
	// No order within a blob is needed: the flusher merges by series.
	out := make([]byte, 0, size)
	out = append(out, blobVersion)
	out = binary.AppendUvarint(out, uint64(len(keys)))
	for _, k := range keys {
		b := c.enc[k]
		out = binary.AppendUvarint(out, uint64(len(b)))
		out = append(out, b...)
	}
	return out, nil
}

// DownSince returns when hand-overs began to fail, or the zero time while
// Redis answers.
func (s *Store) DownSince() time.Time {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	return s.downSince
}

// fallback is what this worker's fallback sent of one (partition, bucket):
// its field and the series, skey.line lines, to record in Redis
// (fallbackScript) once it answers.
type fallback struct {
	id     string
	series string
}

// TakeUnsent removes and returns, merged per bucket, this worker's whole
// partial of every bucket that started at or before cutoff and still has
// something Redis did not acknowledge: for the worker to send it itself when
// Redis has been down too long (or at shutdown). What was acknowledged is
// included, so that each series sent is this worker's whole view of it.
// The rule that keeps a series from going out with two different values:
// at the first hand-over Redis answers, the worker removes its partial of
// those buckets from Redis and lists the series it sent, and the flusher
// leaves those series out of the merged bucket (other workers' parts of
// them are then lost, counted in Stats.FallbackExcluded); series only
// other workers had are sent from Redis as usual. A bucket Redis had
// already closed is counted in Stats.FallbackLate.
func (s *Store) TakeUnsent(cutoff time.Time) []*aggregate.StateBucket {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	limit := cutoff.Unix()
	byStart := make(map[int64][]*aggregate.State)
	for k, c := range s.cum {
		if k.start > limit || len(c.dirty) == 0 {
			continue
		}
		lines := make([]string, 0, len(c.states))
		for sk, st := range c.states {
			byStart[k.start] = append(byStart[k.start], st)
			lines = append(lines, sk.line())
		}
		slices.Sort(lines)
		s.fellBack[k] = fallback{id: c.id, series: strings.Join(lines, "\n")}
		delete(s.cum, k)
	}
	out := make([]*aggregate.StateBucket, 0, len(byStart))
	for _, start := range slices.Sorted(maps.Keys(byStart)) {
		slices.SortFunc(byStart[start], aggregate.CompareStates)
		out = append(out, &aggregate.StateBucket{Start: time.Unix(start, 0).UTC(), Period: s.cfg.Resolution, States: byStart[start]})
	}
	s.stats.FallbackBuckets.Add(uint64(len(out)))
	return out
}

// wantsTotals says whether a series kind has running totals.
func wantsTotals(k metric.Kind) bool { return k == metric.Counter || k == metric.Measure }
