package promwrite

import (
	"strings"

	"github.com/dynometrics/dynometrics/internal/metric"
)

// seriesKey identifies one input series across buckets.
type seriesKey struct {
	name, unit, source string
	kind               metric.Kind
}

// entry is the state kept for one input series: the running totals that make
// counters and summary _sum/_count cumulative, and the timestamp of the last
// sample sent, so that a late bucket never produces an out-of-order sample.
type entry struct {
	key   seriesKey
	fam   *family
	src   string  // source label value: key.source made valid UTF-8 (Prometheus refuses anything else)
	total float64 // Counter: running total of Sum; Measure: running sum of values (unit-converted)
	count float64 // Measure: running count of values
	last  int64   // timestamp (ms) of the last sample emitted; 0 when none yet

	prev, next *entry // recency list, most recently used after the sentinel
}

// tracker holds at most max entries and evicts the least recently updated
// one when a new series arrives at the limit. Not safe for concurrent use.
type tracker struct {
	m       map[seriesKey]*entry
	list    entry // sentinel: list.next is the most recent, list.prev the least
	max     int
	evicted int64

	names    map[seriesKey]*family // Source is empty in these keys
	prefix   string
	maxNames int
}

func newTracker(max int, prefix string) *tracker {
	t := &tracker{
		m:        make(map[seriesKey]*entry),
		max:      max,
		names:    make(map[seriesKey]*family),
		prefix:   prefix,
		maxNames: max,
	}
	t.list.next, t.list.prev = &t.list, &t.list
	return t
}

// get returns the entry for k, creating it (and evicting the least recently
// used entry when the tracker is full) if needed, and marks it most recent.
func (t *tracker) get(k seriesKey) (e *entry, created bool) {
	if e = t.m[k]; e != nil {
		t.unlink(e)
		t.pushFront(e)
		return e, false
	}
	if len(t.m) >= t.max {
		old := t.list.prev
		t.unlink(old)
		delete(t.m, old.key)
		t.evicted++
	}
	k.name, k.unit, k.source = strings.Clone(k.name), strings.Clone(k.unit), strings.Clone(k.source)
	e = &entry{key: k, fam: t.family(k), src: strings.ToValidUTF8(k.source, "\uFFFD")}
	t.m[k] = e
	t.pushFront(e)
	return e, true
}

// family returns the cached metric names for k (source ignored). The cache is
// reset when it reaches maxNames entries, which bounds it like the tracker.
func (t *tracker) family(k seriesKey) *family {
	k.source = ""
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

func (t *tracker) unlink(e *entry) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

func (t *tracker) pushFront(e *entry) {
	e.prev = &t.list
	e.next = t.list.next
	t.list.next.prev = e
	t.list.next = e
}
