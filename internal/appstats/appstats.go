// Package appstats counts, per app in multi-app mode (DRAIN_SECRET), the
// lines accepted, the measurements aggregated and those dropped by reason,
// and the drain POSTs refused. The number of apps counted by name is
// bounded (MaxApps); the apps beyond it are folded into one bucket named
// Other, so that the self-metrics stay bounded whatever apps arrive.
//
// The inputs and the aggregator look up an app's Counters once per body or
// per run of measurements of one app (never per measurement): For is a
// lock-free map read once the app is known.
package appstats

import (
	"maps"
	"strings"
	"sync"
	"sync/atomic"
)

// MaxApps is how many apps are counted under their own name; further apps
// are counted together under Other.
const MaxApps = 50

// Other is the name the apps beyond MaxApps are counted under. It cannot be
// an app's name: Heroku's app names have no underscore.
const Other = "_other"

// Reason is why a measurement of an app was dropped.
type Reason uint8

// The reasons a measurement is dropped, as the aggregator counts them
// (aggregate.Stats).
const (
	Late        Reason = iota // its bucket was already flushed
	SeriesLimit               // it would have opened a series beyond its bucket's room
	SourceShare               // beyond its source's share of the room for new series
	AppShare                  // beyond its app's share of the room for new series
	OpenLimit                 // beyond the series open in all buckets
	Conflict                  // its kind or unit differs from its series'
	Future                    // timestamped too far ahead
	Old                       // timestamped too far back
	Invalid                   // an unknown kind or a NaN value
	OutOfRange                // its magnitude exceeds aggregate.MaxAbsValue
	NumReasons                // the number of reasons
)

var reasonNames = [NumReasons]string{"late", "series_limit", "source_share", "app_share", "open_limit",
	"conflict", "future", "old", "invalid", "out_of_range"}

// String returns the reason's self-metric name part ("series_limit").
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Counters are one app's cumulative counts. Safe for concurrent use.
type Counters struct {
	Lines        atomic.Uint64             // log lines handed to the l2met parser
	Measurements atomic.Uint64             // measurements given to the aggregator (aggregated or dropped)
	Dropped      [NumReasons]atomic.Uint64 // of those, dropped, by Reason
	Refused      atomic.Uint64             // drain POSTs answered 503 (the app's share of the queue, or the queue full)
}

// Table maps apps to their Counters: the first MaxApps apps seen get their
// own, every later app shares Other's. The zero value is not usable; call
// New. Safe for concurrent use.
type Table struct {
	apps  atomic.Pointer[map[string]*Counters] // copied on write
	mu    sync.Mutex                           // serializes writers
	other Counters
	onNew func(app string, c *Counters)
}

// New returns an empty Table. onNew, when not nil, is called once for each
// app that gets Counters of its own, and once for Other (by New itself),
// before they are counted in: the worker registers the app's self-metrics
// there. It is called with the Table's write lock held and must not call
// back into the Table.
func New(onNew func(app string, c *Counters)) *Table {
	t := &Table{onNew: onNew}
	m := map[string]*Counters{}
	t.apps.Store(&m)
	if onNew != nil {
		onNew(Other, &t.other)
	}
	return t
}

// For returns app's Counters, or Other's when MaxApps apps have counters of
// their own already. app may alias a reused buffer: it is copied when kept.
func (t *Table) For(app string) *Counters {
	if c, ok := (*t.apps.Load())[app]; ok {
		return c
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.apps.Load()
	if c, ok := old[app]; ok {
		return c
	}
	if len(old) >= MaxApps {
		return &t.other
	}
	c := new(Counters)
	m := maps.Clone(old)
	app = strings.Clone(app) // the key outlives the caller's buffer
	m[app] = c
	if t.onNew != nil {
		t.onNew(app, c)
	}
	t.apps.Store(&m)
	return c
}

// Each calls f with every app counted under its own name, then with Other,
// in no particular order.
func (t *Table) Each(f func(app string, c *Counters)) {
	for app, c := range *t.apps.Load() {
		f(app, c)
	}
	f(Other, &t.other)
}

// Apps returns the number of apps counted under their own name.
func (t *Table) Apps() int { return len(*t.apps.Load()) }

// Tally is the counts of one run of an app's measurements, kept in local
// variables by the aggregator and added to the app's Counters at once.
type Tally struct {
	Measurements uint64
	Dropped      [NumReasons]uint64
}

// Add adds t to c.
func (c *Counters) Add(t *Tally) {
	if t.Measurements != 0 {
		c.Measurements.Add(t.Measurements)
	}
	for r, n := range t.Dropped {
		if n != 0 {
			c.Dropped[r].Add(n)
		}
	}
}
