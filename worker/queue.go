package main

import (
	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/outlet"
)

// queueBuckets is how many buckets at the series limit an outlet's queue
// holds: the one being sent, the next, and one more while the receiver is
// slow. Below the limit the same bound holds many more buckets.
const queueBuckets = 3

// queueFor returns the delivery tuning of an outlet that encodes up to
// outputsPerSeries measurements (or samples) per series and perRequest of
// them per request: the queue bound is derived from the series bound
// (aggregate.DefaultMaxSeries), so that a bucket at the limit is delivered
// whole instead of overflowing the queue. The memory this allows is that of
// queueBuckets encoded buckets at the limit (measured in
// docs/performance.md, "Shared state on Redis").
func (w *worker) queueFor(outputsPerSeries, perRequest int) outlet.QueueConfig {
	q := w.opt.queue
	if q.MaxBatches == 0 {
		q.MaxBatches = queueBound(aggregate.DefaultMaxSeries, outputsPerSeries, perRequest)
	}
	return q
}

// queueBound is max(outlet.DefaultMaxBatches, queueBuckets × the requests
// one bucket of maxSeries series makes).
func queueBound(maxSeries, outputsPerSeries, perRequest int) int {
	perBucket := (maxSeries*outputsPerSeries + perRequest - 1) / perRequest
	return max(outlet.DefaultMaxBatches, queueBuckets*perBucket)
}
