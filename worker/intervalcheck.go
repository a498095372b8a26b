package main

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/throttle"
)

// intervalWarnEvery bounds how often intervalCheck logs.
const intervalWarnEvery = time.Hour

// intervalCheck notices an app whose emitter prints timer statistics more
// often than the worker's buckets: the emitter's sample#NAME.perc95 (and its
// siblings) arriving more than once from one source in one bucket, of which
// the bucket keeps the last, so the bucket's statistics describe only the
// last emission. The emitter refuses that combination when it sees
// METRICS_RESOLUTION; an app in another Heroku app cannot, so the worker says
// it: a warning at most once per intervalWarnEvery, naming the series, and
// the self-metric worker.aggregate.partial_timer_stats.
type intervalCheck struct {
	res   time.Duration
	log   *throttle.Logger // at most once per intervalWarnEvery
	count atomic.Uint64    // series whose timer statistics arrived more than once in a bucket
}

// view is a worker viewer: it sees every flushed bucket.
func (c *intervalCheck) view(b *aggregate.Bucket) {
	var first *aggregate.Series
	n := uint64(0)
	for i := range b.Series {
		s := &b.Series[i]
		if s.Kind == metric.Sample && s.Count > 1 && strings.HasSuffix(s.Name, ".perc95") {
			if first == nil {
				first = s
			}
			n++
		}
	}
	if n == 0 {
		return
	}
	c.count.Add(n)
	c.log.Warn("timer statistics arrived more than once in one bucket, so it keeps only the last emission's "+
		"min, mean, percentiles and max (counts are right). Either the app emits more often than METRICS_RESOLUTION "+
		"(set its EMITTER_INTERVAL to METRICS_RESOLUTION), or its lines carry no timestamp and were read late, "+
		"several emissions at once (e.g. piped into -stdin while the worker was still being built) "+
		"(logged at most once an hour)",
		"series", "sample#"+first.Name, "source", first.Source, "times", first.Count,
		"bucket", b.Start.UTC().Format(time.RFC3339), "METRICS_RESOLUTION", c.res.String(), "series_affected", n)
}
