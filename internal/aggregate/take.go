package aggregate

import "math"

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
	parts := a.remove(math.MaxInt64)
	a.handedOver(parts, a.cfg.Now())
	return append([]*StateBucket{}, a.toStateBuckets(parts)...) // never nil
}
