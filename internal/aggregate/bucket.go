package aggregate

import (
	"time"

	"github.com/dynometrics/dynometrics/internal/l2met"
)

// Series is the flushed state of one (name, source) pair in one bucket: the
// hand-over from aggregation to every outlet. Which fields are meaningful
// depends on Kind:
//
//   - l2met.Counter: Sum is the per-bucket sum of the counted values, Count the
//     number of count# pairs seen.
//   - l2met.Sample:  Last is the value with the latest timestamp, Count the
//     number of samples.
//   - l2met.Measure: Count, Sum, Min, Max, SumSquares, Last and the percentiles
//     Median, P95, P99 (nearest rank; exact up to ExactLimit values).
type Series struct {
	Name   string // metric name as parsed, without any prefix
	Source string // dyno or add-on attachment; may be empty
	Unit   string // unit suffix as parsed ("ms", "MB", "%"); may be empty
	Kind   l2met.Kind

	Count      int64
	Sum        float64
	Min        float64
	Max        float64
	SumSquares float64
	Last       float64

	Median float64
	P95    float64
	P99    float64
}

// Bucket is one flushed time bucket: every series that saw at least one value
// between Start (inclusive) and Start+Period (exclusive). Series are sorted by
// Name, then Source. Outlets must not modify a Bucket or keep it after Write
// returns unless they copy it.
type Bucket struct {
	Start  time.Time // aligned to Period, UTC
	Period time.Duration
	Series []Series
}
