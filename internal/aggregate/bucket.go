package aggregate

import (
	"time"

	"github.com/dynometrics/dynometrics/internal/metric"
)

// Series is the flushed state of one (name, source) pair in one bucket: the
// hand-over from aggregation to every outlet. Which fields are meaningful
// depends on Kind:
//
//   - metric.Counter: Sum is the per-bucket sum of the counted values, Count the
//     number of count# pairs seen.
//   - metric.Sample:  Last is the value with the latest timestamp, Count the
//     number of samples.
//   - metric.Measure: Count, Sum, Min, Max, SumSquares, Last and the percentiles
//     Median, P95, P99 (nearest rank; exact up to ExactLimit values).
type Series struct {
	App    string // the app (multi-app mode, DRAIN_SECRET); empty in single-app mode
	Name   string // metric name as parsed, without any prefix
	Source string // dyno or add-on attachment; may be empty
	Unit   string // unit suffix as parsed ("ms", "MB", "%"); may be empty
	Kind   metric.Kind

	Count      int64
	Sum        float64
	Min        float64
	Max        float64
	SumSquares float64
	Last       float64

	Median float64
	P95    float64
	P99    float64

	// State is the mergeable state the statistics above come from, for
	// outlets and views that need the whole distribution (an OTLP
	// exponential histogram, the view's all-dynos line). Set for
	// metric.Measure series, nil otherwise. Read-only: merge it into a State
	// of your own (State.Merge), never modify it.
	State *State

	// Totals are running totals across buckets computed by shared state
	// (internal/store), so that cumulative outputs continue across workers and
	// restarts. nil when the worker runs alone: an outlet then keeps its own.
	Totals *Totals
}

// Totals are a series' running totals from its first bucket up to and
// including this one.
type Totals struct {
	Start time.Time // when the totals started: an OTLP cumulative start time
	Sum   float64   // metric.Counter: running sum of bucket sums; metric.Measure: running sum of values
	Count float64   // metric.Measure: running count of values; metric.Counter: running count of pairs
}

// Bucket is one flushed time bucket: every series that saw at least one value
// between Start (inclusive) and Start+Period (exclusive). Series are sorted by
// App, Name, then Source. Outlets must not modify a Bucket or keep it after Write
// returns unless they copy it.
type Bucket struct {
	Start  time.Time // aligned to Period, UTC
	Period time.Duration
	Series []Series

	// Done, when set, is called by each outlet the bucket is written to,
	// once, when the outlet has settled it: with nil when the receiver
	// accepted all of it, else with the reason it was not (dropped,
	// undelivered at shutdown). Shared state sets it to learn which outlets
	// still owe a bucket. It must not block.
	Done func(outlet string, err error)

	// Valid, when set, is asked by an outlet's queue before each request
	// that carries the bucket: false means the sender no longer owns the
	// bucket (shared state: its partition's lease moved to another worker,
	// which delivers it), and the request is not made (Done gets an error
	// wrapping outlet.ErrWithdrawn). It must not block.
	Valid func() bool
}
