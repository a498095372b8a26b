package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/redis/go-redis/v9"
)

// Handover appends the partial states taken from the aggregator (see
// aggregate.Aggregator.TakeStates) to Redis, one blob per partition and
// bucket. Store takes ownership of the states. Partials Redis did not take
// (it is down or slow) are kept and sent with the next call, unchanged when
// they may have reached Redis (so that a retry cannot count them twice), and
// merged into one blob per partition and bucket when they never left; the
// error says why. Partials for a bucket already flushed are refused by Redis
// and counted as late (Stats.LateStates, LateMeasurements).
//
// While Redis is known to be down, Handover first checks that it answers
// (one PING) and otherwise only keeps the partials. Not for concurrent use
// with itself.
func (s *Store) Handover(ctx context.Context, taken []*aggregate.StateBucket) error {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	for _, b := range taken {
		start := b.Start.Unix()
		for _, st := range b.States {
			k := pkey{partition(st.Name, st.Source, s.cfg.Partitions), start}
			m := s.unattempted[k]
			if m == nil {
				m = make(map[skey]*aggregate.State)
				s.unattempted[k] = m
			}
			sk := skey{st.Name, st.Source}
			if have := m[sk]; have != nil {
				if err := have.Merge(st); err != nil {
					// Same series, other kind or unit: keep the first,
					// as the aggregator does within a bucket.
					s.stats.seriesConflicts.Add(1)
				}
				continue
			}
			m[sk] = st
		}
	}
	if !s.downSince.IsZero() {
		if err := s.Ping(ctx); err != nil {
			return s.handoverFailed(err)
		}
	}
	if err := s.encodeUnattempted(); err != nil {
		return err
	}
	if len(s.attempted) == 0 {
		return nil
	}
	ttl := int64(s.cfg.Retention / time.Second)
	cmds, err := s.runPipe(ctx, func(pipe redis.Pipeliner) {
		for _, b := range s.attempted {
			k := s.keys(b.key.p)
			evalsha(ctx, pipe, appendScript, []string{k.closed(b.key.start), k.parts(b.key.start), k.pending()},
				b.id, b.data, b.key.start, ttl)
		}
	})
	if len(cmds) != len(s.attempted) {
		return s.handoverFailed(err)
	}
	kept := s.attempted[:0]
	var firstErr error
	for i, c := range cmds {
		b := s.attempted[i]
		n, cerr := c.(*redis.Cmd).Int64()
		switch {
		case cerr != nil:
			kept = append(kept, b)
			if firstErr == nil {
				firstErr = cerr
			}
		case n == 0:
			s.stats.lateStates.Add(uint64(b.states))
			s.stats.lateMeasurements.Add(uint64(b.measure))
			s.warn("late", "store: partial states for a bucket already flushed: counted late, not sent",
				"bucket", time.Unix(b.key.start, 0).UTC(), "series", b.states, "measurements", b.measure)
		default:
			s.stats.handoverBlobs.Add(1)
			s.stats.handoverStates.Add(uint64(b.states))
			s.stats.handoverBytes.Add(uint64(len(b.data)))
		}
	}
	clear(s.attempted[len(kept):])
	s.attempted = kept
	if firstErr != nil {
		return s.handoverFailed(s.redact(firstErr))
	}
	if !s.downSince.IsZero() {
		s.log.Info("store: Redis answers again; partials handed over", "down_for", s.cfg.Now().Sub(s.downSince).Round(time.Second))
	}
	s.downSince, s.failures = time.Time{}, 0
	return nil
}

func (s *Store) handoverFailed(err error) error {
	s.stats.handoverErrors.Add(1)
	s.failures++
	if s.downSince.IsZero() {
		s.downSince = s.cfg.Now()
	}
	n := 0
	for _, m := range s.unattempted {
		n += len(m)
	}
	for _, b := range s.attempted {
		n += b.states
	}
	s.warn("handover", "store: cannot hand partial states to Redis; keeping them and retrying",
		"err", err, "unsent_states", n, "down_since", s.downSince)
	return fmt.Errorf("store: hand-over: %w", err)
}

// encodeUnattempted turns every never-sent partial into a blob with a fresh
// id. Called with hmu held.
func (s *Store) encodeUnattempted() error {
	keys := make([]pkey, 0, len(s.unattempted))
	for k := range s.unattempted {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b pkey) int {
		return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.p, b.p))
	})
	for _, k := range keys {
		m := s.unattempted[k]
		states := sortedStates(m)
		data, err := encodeStates(nil, states)
		if err != nil {
			return fmt.Errorf("store: encode partials: %w", err)
		}
		var n int64
		for _, st := range states {
			n += st.Count()
		}
		// Ids sort by worker, then sequence: the merge order.
		id := s.cfg.ID + ":" + fmt.Sprintf("%016x", s.seq.Add(1))
		s.attempted = append(s.attempted, blob{key: k, id: id, data: data, states: len(states), measure: n})
		delete(s.unattempted, k)
	}
	return nil
}

func sortedStates(m map[skey]*aggregate.State) []*aggregate.State {
	states := make([]*aggregate.State, 0, len(m))
	for _, st := range m {
		states = append(states, st)
	}
	sortStates(states)
	return states
}

func sortStates(states []*aggregate.State) {
	slices.SortFunc(states, func(x, y *aggregate.State) int {
		return cmp.Or(strings.Compare(x.Name, y.Name), strings.Compare(x.Source, y.Source))
	})
}

// DownSince returns when hand-overs began to fail, or the zero time while
// Redis answers.
func (s *Store) DownSince() time.Time {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	return s.downSince
}

// TakeUnsent removes and returns, merged per bucket, every partial Redis has
// not taken whose bucket started at or before cutoff: for the worker to send
// them itself when Redis has been down too long (or at shutdown). Partials
// that may have reached Redis before it stopped answering are included, so
// such a bucket may be sent twice (once from here, once by the worker that
// flushes it in Redis); that is the documented cost of the fallback.
func (s *Store) TakeUnsent(cutoff time.Time) []*aggregate.StateBucket {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	limit := cutoff.Unix()
	byStart := make(map[int64]map[skey]*aggregate.State)
	add := func(start int64, st *aggregate.State) {
		m := byStart[start]
		if m == nil {
			m = make(map[skey]*aggregate.State)
			byStart[start] = m
		}
		sk := skey{st.Name, st.Source}
		if have := m[sk]; have != nil {
			if have.Merge(st) != nil {
				s.stats.seriesConflicts.Add(1)
			}
			return
		}
		m[sk] = st
	}
	kept := s.attempted[:0]
	for _, b := range s.attempted {
		if b.key.start > limit {
			kept = append(kept, b)
			continue
		}
		states, err := decodeStates(b.data)
		if err != nil { // our own encoding: cannot happen
			s.stats.badBlobs.Add(1)
			continue
		}
		for _, st := range states {
			add(b.key.start, st)
		}
	}
	clear(s.attempted[len(kept):])
	s.attempted = kept
	for k, m := range s.unattempted {
		if k.start > limit {
			continue
		}
		for _, st := range sortedStates(m) {
			add(k.start, st)
		}
		delete(s.unattempted, k)
	}
	out := make([]*aggregate.StateBucket, 0, len(byStart))
	for start, m := range byStart {
		out = append(out, &aggregate.StateBucket{Start: time.Unix(start, 0).UTC(), Period: s.cfg.Resolution, States: sortedStates(m)})
	}
	slices.SortFunc(out, func(a, b *aggregate.StateBucket) int { return a.Start.Compare(b.Start) })
	s.stats.fallbackBuckets.Add(uint64(len(out)))
	return out
}

// seriesField is a series' field in the totals hash: kind, unit, name and
// source, NUL-separated (none of them may hold a NUL byte that matters: a
// name with one merely shares a field with another such name).
func seriesField(st *aggregate.State) string {
	return strconv.Itoa(int(st.Kind)) + "\x00" + st.Unit + "\x00" + st.Name + "\x00" + st.Source
}

// wantsTotals says whether a series kind has running totals.
func wantsTotals(k metric.Kind) bool { return k == metric.Counter || k == metric.Measure }
