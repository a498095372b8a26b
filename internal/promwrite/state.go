package promwrite

import (
	"strings"

	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/outlet"
)

// seriesKey identifies one input series across buckets.
type seriesKey struct {
	app, name, unit, source string
	kind                    metric.Kind
}

// entry is the state kept for one input series: the running totals that make
// counters and summary _sum/_count cumulative, and the timestamp of the last
// sample sent, so that a late bucket never produces an out-of-order sample.
type entry struct {
	fam   *family
	src   string  // source label value: key.source made valid UTF-8 (Prometheus refuses anything else)
	app   string  // app label value: key.app (a valid app name), "" in single-app mode
	total float64 // Counter: running total of Sum; Measure: running sum of values (unit-converted)
	count float64 // Measure: running count of values
	last  int64   // timestamp (ms) of the last sample emitted; 0 when none yet
}

// tracker holds at most max entries, forgetting the least recently updated
// one when a new series arrives at the limit, and caches the metric names
// of each family. Not safe for concurrent use.
type tracker struct {
	*outlet.LRU[seriesKey, entry]

	names    map[seriesKey]*family // Source is empty in these keys
	prefix   string
	maxNames int
}

func newTracker(max int, prefix string) *tracker {
	return &tracker{
		LRU:      outlet.NewLRU[seriesKey, entry](max, cloneKey),
		names:    make(map[seriesKey]*family),
		prefix:   prefix,
		maxNames: max,
	}
}

// cloneKey copies k's strings, which point into a bucket.
func cloneKey(k seriesKey) seriesKey {
	k.app, k.name, k.unit, k.source = strings.Clone(k.app), strings.Clone(k.name), strings.Clone(k.unit), strings.Clone(k.source)
	return k
}

// get returns the entry for k, creating it (and evicting the least recently
// used entry when the tracker is full) if needed, and marks it most recent.
func (t *tracker) get(k seriesKey) (e *entry, created bool) {
	e, created = t.Get(k)
	if created {
		e.fam, e.src, e.app = t.family(k), strings.ToValidUTF8(k.source, "\uFFFD"), k.app
	}
	return e, created
}

// family returns the cached metric names for k (source ignored). The cache is
// reset when it reaches maxNames entries, which bounds it like the tracker.
func (t *tracker) family(k seriesKey) *family {
	k.source, k.app = "", ""
	if f := t.names[k]; f != nil {
		return f
	}
	if len(t.names) >= t.maxNames {
		clear(t.names)
	}
	f := newFamily(t.prefix, k.name, k.unit, k.kind)
	t.names[k] = &f
	return &f
}
