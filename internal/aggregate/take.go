package aggregate

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// TakeStates removes the states of every open bucket, the current partial
// one included, and returns them oldest bucket first, each bucket's states
// sorted by Name then Source. Unlike FlushAll it does not mark the buckets
// flushed: later measurements for the same buckets start fresh states, and
// the caller merges what it took with what it takes next (shared state hands
// these partials to Redis every few seconds). The caller owns the returned
// states. Taken series are not counted in Stats.BucketsFlushed or
// SeriesFlushed. Safe for concurrent use.
//
// TakeStates also advances the late mark as Flush does: a measurement for a
// bucket whose deadline (Start+Resolution+Grace) has passed is counted late
// in Stats.Late and never taken, since shared state closes such buckets at
// their deadline (whichever worker flushes them).
func (a *Aggregator) TakeStates() []*StateBucket {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	if cutoff := a.dueCutoff(a.cfg.Now()); cutoff > a.flushed.Load() {
		// Publish first, as collect does: an Add after this sees the mark.
		// What is already open for those buckets is taken below.
		a.flushed.Store(cutoff)
	}
	byStart := make(map[int64][]*State)
	hashes := make(map[int64][]uint64)
	apps := make(map[int64]map[string]struct{})
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		for start, b := range sh.buckets {
			delete(sh.buckets, start)
			for k, st := range b.series {
				byStart[start] = append(byStart[start], st)
				hashes[start] = append(hashes[start], seriesHash(a.seed, k.name, k.source))
			}
			for app := range b.apps {
				if apps[start] == nil {
					apps[start] = make(map[string]struct{})
				}
				apps[start][app] = struct{}{}
			}
			b.eachApp(func(k seriesKey, st *State) {
				byStart[start] = append(byStart[start], st)
				hashes[start] = append(hashes[start], appSeriesHash(a.seed, st.App, k.name, k.source))
			})
			a.open.Add(-int64(b.len()))
			b.clear()
			a.buckets.Put(b)
		}
		sh.cur = nil
		sh.mu.Unlock()
	}
	a.handedOver(hashes, apps, a.cfg.Now())
	out := make([]*StateBucket, 0, len(byStart))
	for start, states := range byStart {
		slices.SortFunc(states, func(x, y *State) int {
			if c := strings.Compare(x.App, y.App); c != 0 {
				return c
			}
			if c := strings.Compare(x.Name, y.Name); c != 0 {
				return c
			}
			return strings.Compare(x.Source, y.Source)
		})
		out = append(out, &StateBucket{Start: time.Unix(start, 0).UTC(), Period: a.cfg.Resolution, States: states})
	}
	slices.SortFunc(out, func(x, y *StateBucket) int { return cmp.Compare(x.Start.Unix(), y.Start.Unix()) })
	return out
}
