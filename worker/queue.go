package main

import (
	"cmp"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/outlet"
)

// queueBuckets is how many buckets at the series limit an outlet's queue
// holds: the one being sent, the next, and one more while the receiver is
// slow. Below the limit the same bound holds many more buckets.
const queueBuckets = 3

// sharedQueueWait is how long, with REDIS_URL, a flush waits for room in a
// full outlet queue before the oldest batch is dropped (outlet.QueueConfig
// Wait: backpressure). A merged bucket holds up to METRICS_MAX_SERIES per
// worker, and the worker holding its partitions may flush all of it (alone,
// or while leases move): it then goes out at the receiver's pace instead of
// overflowing the queue. The wait ends as soon as a request starts (one in
// flight finished): 5 s is long for that with a receiver that answers, and
// short enough that a receiver that is down stalls the flush (or a fallback,
// or the hand-over at SIGTERM within SHUTDOWN_TIMEOUT) once, for 5 s, not for
// every batch (see outlet.QueueConfig.Wait).
const sharedQueueWait = 5 * time.Second

// sharedQueueMin is the least queue bound with REDIS_URL: Redis keeps every
// bucket an outlet has not taken and resends it, so the queue only holds
// what is being flushed, not hours of backlog.
const sharedQueueMin = 16

// queueFor returns the delivery tuning of an outlet that encodes up to
// outputsPerSeries measurements (or samples) per series and perRequest of
// them per request. The queue bound is derived from METRICS_MAX_SERIES: it
// holds queueBuckets buckets of one worker's series bound, so that a bucket
// at the limit is delivered whole instead of overflowing the queue (the
// memory this allows is measured in docs/performance.md). Without Redis it
// is at least outlet.DefaultMaxBatches (the queue is then the only buffer
// while the receiver is down). With Redis a merged bucket may be larger (up
// to the bound times the workers) and the flush waits for room instead of
// dropping (sharedQueueWait); the bound's floor is small (sharedQueueMin),
// since Redis buffers what is not delivered. See docs/limits.md.
func (w *worker) queueFor(outputsPerSeries, perRequest int) outlet.QueueConfig {
	q := w.opt.queue
	maxSeries := cmp.Or(w.cfg.Buckets.MaxSeries, aggregate.DefaultMaxSeries) // never negative: Validate refuses it
	floor := outlet.DefaultMaxBatches
	if w.cfg.Redis.URL != "" {
		floor = sharedQueueMin
		q.Wait = cmp.Or(q.Wait, sharedQueueWait)
	}
	q.MaxBatches = cmp.Or(q.MaxBatches, queueBound(maxSeries, outputsPerSeries, perRequest, floor))
	return q
}

// queueBound is max(floor, queueBuckets × the requests one bucket of
// maxSeries series makes).
func queueBound(maxSeries, outputsPerSeries, perRequest, floor int) int {
	perBucket := (maxSeries*outputsPerSeries + perRequest - 1) / perRequest
	return max(floor, queueBuckets*perBucket)
}
