package aggregate

import (
	"cmp"
	"hash/maphash"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dynometrics/dynometrics/internal/appstats"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// MaxAbsValue is the largest magnitude of a measurement's value; larger
// ones (and ±Inf) are dropped and counted in Stats.DroppedOutOfRange rather
// than aggregated. Librato refuses values of 1e126 and more (a whole request
// at a time); bounding each value at 1e100 keeps every sum, minimum, maximum,
// mean and percentile of a bucket far below that (a sum would need 10^26
// values to reach it), so one outlier never costs its series the bucket. The
// sum of squares of values above 1e63 can still pass 1e126: the Librato
// outlet then sends the series without that optional field.
const MaxAbsValue = 1e100

// numShards is the number of independently locked parts of the open series;
// a power of two. Sixty-four keeps lock contention negligible for a handful
// of input goroutines while Flush still visits few locks.
const numShards = 64

// Aggregator collects measurements into time buckets per series (app, name,
// source) and hands out the buckets once they are complete. Add is called by
// the inputs, Flush by a ticker, FlushAll on shutdown. It is safe for
// concurrent use.
//
// A series' kind and unit are those of the first measurement that opened it
// in its bucket: a later measurement with the same name and source but a
// different kind or unit is dropped and counted in Stats.DroppedConflict,
// since outlets send one metric per name and mixing kinds or units would
// garble it. The next bucket starts afresh.
type Aggregator struct {
	cfg       Config
	resSec    int64
	futureSec int64 // MaxFuture in whole seconds (rounded up)
	ageSec    int64 // MaxAge in whole seconds (rounded up)
	seed      maphash.Seed

	// flushed is the start (unix seconds) of the newest bucket already
	// flushed, or whose deadline had passed at a Flush: a measurement for a
	// bucket starting at or before it is late. Written under flushMu, read
	// under a shard lock.
	flushed atomic.Int64
	open    atomic.Int64 // open series across all shards

	// Drops counted outside the shards (Invalid, OutOfRange, Future, Old
	// and admission's refusals), by reason.
	dropped [added]atomic.Uint64

	flushMu         sync.Mutex // serializes Flush and FlushAll
	bucketsFlushed  atomic.Uint64
	seriesFlushed   atomic.Uint64
	sketchSaturated atomic.Uint64

	adm admission // fair series admission (admit.go)

	states  sync.Pool // *State, reset
	buckets sync.Pool // *shardBucket with empty maps

	shards [numShards]shard
}

// shard is one independently locked part of the open series, padded to a
// multiple of 128 bytes so that neighbouring shards' locks and counters never
// share a cache line (128: adjacent-line prefetch on x86).
type shard struct {
	shardData
	_ [128 - unsafe.Sizeof(shardData{})%128]byte
}

type shardData struct {
	mu      sync.Mutex
	buckets map[int64]*shardBucket // by start, unix seconds
	cur     *shardBucket           // the bucket last added to, or nil

	// Counters, under mu.
	added           uint64
	late            uint64
	droppedConflict uint64
}

// shardBucket is one shard's part of one bucket.
type shardBucket struct {
	start  int64
	series map[seriesKey]*State  // series without an app (single-app mode)
	apps   map[string]*appBucket // series of each app (multi-app mode)
	last   *appBucket            // the app last added to, or nil
	nApps  int                   // series in apps
}

// appBucket is one app's series in a shardBucket (multi-app mode). A body's
// measurements are all of one app, so addOne finds the app's map through
// shardBucket.last (a string comparison that usually stops at the pointer)
// and looks series up by name and source alone, as in single-app mode: a
// key of app, name and source made ingest per line about 15 % dearer than
// in single-app mode (BenchmarkIngestModes, process CPU).
type appBucket struct {
	app    string // a copy, not the parser's
	series map[seriesKey]*State
}

// The single-app map keeps its two-string key: a third, always empty string
// in it made BenchmarkAdd 10 to 20 % slower per measurement.
type seriesKey struct{ name, source string }

// len returns the number of series in b.
func (b *shardBucket) len() int { return len(b.series) + b.nApps }

// clear empties b, keeping its single-app map for reuse.
func (b *shardBucket) clear() {
	clear(b.series)
	clear(b.apps)
	b.last, b.nApps = nil, 0
}

// Stats are the Aggregator's cumulative counters, for self-metrics. Every
// measurement given to Add is counted in exactly one of Added, Late and the
// Dropped fields.
type Stats struct {
	Added              uint64 `metric:"added"`                             // measurements aggregated into an open series
	Late               uint64 `metric:"late,drop"`                         // measurements for a bucket already flushed (or past its deadline at a Flush)
	DroppedSeriesLimit uint64 `metric:"dropped.series_limit dropped,drop"` // measurements that would have opened a series beyond their bucket's room (MaxSeries; see admit.go)
	DroppedSourceShare uint64 `metric:"dropped.source_share dropped,drop"` // measurements that would have opened a new series beyond their source's share of a contested bucket
	DroppedAppShare    uint64 `metric:"dropped.app_share dropped,drop"`    // measurements that would have opened a new series beyond their app's share of a contested bucket (multi-app mode)
	DroppedOpenLimit   uint64 `metric:"dropped.open_limit dropped,drop"`   // measurements that would have opened a series beyond 2×MaxSeries open in all buckets
	DroppedFuture      uint64 `metric:"dropped.future dropped,drop"`       // measurements timestamped more than MaxFuture after the clock
	DroppedOld         uint64 `metric:"dropped.old dropped,drop"`          // measurements timestamped more than MaxAge before the clock
	DroppedConflict    uint64 `metric:"dropped.conflict dropped,drop"`     // measurements whose kind or unit differs from their series'
	DroppedInvalid     uint64 `metric:"dropped.invalid dropped,drop"`      // measurements with an unknown kind or a NaN value
	DroppedOutOfRange  uint64 `metric:"dropped.out_of_range dropped,drop"` // measurements whose magnitude exceeds MaxAbsValue (±Inf included)
	BucketsFlushed     uint64 `metric:"-"`                                 // buckets returned by Flush and FlushAll
	SeriesFlushed      uint64 `metric:"series_flushed"`                    // series in those buckets
	SketchSaturated    uint64 `metric:"sketch_saturated,drop"`             // flushed series whose sketch reached SketchMaxBins
	OpenSeries         int64  `metric:"open_series,gauge"`                 // series open now (a gauge, not cumulative)
}

// New returns an Aggregator for cfg after applying defaults and validating
// it; errors wrap ErrConfig.
func New(cfg Config) (*Aggregator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &Aggregator{
		cfg:       cfg,
		resSec:    int64(cfg.Resolution / time.Second),
		futureSec: ceilSeconds(cfg.MaxFuture),
		ageSec:    ceilSeconds(cfg.MaxAge),
		seed:      maphash.MakeSeed(),
	}
	a.flushed.Store(math.MinInt64)
	for i := range a.shards {
		a.shards[i].buckets = make(map[int64]*shardBucket)
	}
	a.adm.buckets = make(map[int64]*bucketAdmission)
	a.adm.known.Store(&knownSeries{})
	a.states.New = func() any { return new(State) }
	a.buckets.New = func() any { return &shardBucket{series: make(map[seriesKey]*State), apps: make(map[string]*appBucket)} }
	return a, nil
}

func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// Add aggregates ms into their buckets. It does not retain ms or the strings
// in it (names are copied when a series opens), so a parser may reuse both.
// Safe for concurrent use; it satisfies the inputs' sink.
func (a *Aggregator) Add(ms []metric.Measurement) {
	if len(ms) == 0 {
		return
	}
	nowSec := a.cfg.Now().Unix()
	maxSec, minSec := nowSec+a.futureSec, nowSec-a.ageSec
	var drops [added]uint64 // by reason
	// In multi-app mode, the outcomes of a run of one app's measurements
	// (a body's are one run) are counted per app when the run ends.
	var run string
	var runHash uint64 // appHash of run
	var tally appstats.Tally
	for i := range ms {
		m := &ms[i]
		if m.App != run {
			a.countApp(run, &tally)
			run, runHash = m.App, appHash(a.seed, m.App)
		}
		var r outcome
		switch sec := m.Time.Unix(); {
		case m.Kind < metric.Counter || m.Kind > metric.Measure || math.IsNaN(m.Value) ||
			m.Dist != nil && !validDist(m):
			r = appstats.Invalid
		case !(math.Abs(m.Value) <= MaxAbsValue): // ±Inf too
			r = appstats.OutOfRange
		case sec > maxSec:
			r = appstats.Future
		case sec < minSec:
			r = appstats.Old
		default:
			// Within MaxAge/MaxFuture of now, so UnixNano is well defined.
			r = a.addOne(m, runHash, sec-floorMod(sec, a.resSec), m.Time.UnixNano())
			if run == "" {
				continue
			}
		}
		if r < added {
			drops[r]++
		}
		if run != "" {
			tally.Measurements++
			if r < added {
				tally.Dropped[r]++
			}
		}
	}
	a.countApp(run, &tally)
	for _, r := range [...]outcome{appstats.Invalid, appstats.OutOfRange, appstats.Future, appstats.Old} {
		if drops[r] != 0 {
			a.dropped[r].Add(drops[r])
		}
	}
}

// countApp adds t to app's counters (Config.Apps) and clears it; app ""
// (single-app mode) is not counted.
func (a *Aggregator) countApp(app string, t *appstats.Tally) {
	if app == "" || a.cfg.Apps == nil || t.Measurements == 0 {
		return
	}
	a.cfg.Apps.For(app).Add(t)
	*t = appstats.Tally{}
}

// outcome is what became of one measurement: added, or the reason it was
// dropped (counted where it was decided).
type outcome = appstats.Reason

// added is the outcome of a measurement aggregated into its series.
const added outcome = appstats.NumReasons

// addOne adds m to the bucket starting at start (unix seconds); ah is
// appHash of m.App.
func (a *Aggregator) addOne(m *metric.Measurement, ah uint64, start, tn int64) outcome {
	h := seriesHash(a.seed, m.Name, m.Source) ^ ah
	sh := &a.shards[h&(numShards-1)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if start <= a.flushed.Load() {
		sh.late++
		return appstats.Late
	}
	b := sh.cur
	if b == nil || b.start != start {
		b = sh.buckets[start]
		if b == nil {
			b = a.buckets.Get().(*shardBucket)
			b.start = start
			sh.buckets[start] = b
		}
		sh.cur = b
	}
	var st *State
	var ab *appBucket
	if m.App == "" {
		st = b.series[seriesKey{m.Name, m.Source}]
	} else {
		if ab = b.last; ab == nil || ab.app != m.App {
			if ab = b.apps[m.App]; ab != nil {
				b.last = ab
			}
		}
		if ab != nil {
			st = ab.series[seriesKey{m.Name, m.Source}]
		}
	}
	switch {
	case st == nil:
		if r := a.admit(h, start, m.App, m.Source); r != added {
			a.dropped[r].Add(1)
			return r
		}
		st = a.newState(m)
		if st.App == "" {
			b.series[seriesKey{st.Name, st.Source}] = st
		} else {
			if ab == nil {
				ab = &appBucket{app: st.App, series: make(map[seriesKey]*State)}
				b.apps[st.App] = ab
			}
			b.last = ab
			ab.series[seriesKey{st.Name, st.Source}] = st
			b.nApps++
		}
	case st.Kind != m.Kind || st.Unit != m.Unit:
		sh.droppedConflict++
		return appstats.Conflict
	}
	if m.Dist != nil {
		st.addDist(tn, m.Dist)
	} else {
		st.add(tn, m.Value)
	}
	sh.added++
	return added
}

func (a *Aggregator) newState(m *metric.Measurement) *State {
	st := a.states.Get().(*State)
	// Clone: the parser may hand over strings that alias a reused buffer.
	st.App = strings.Clone(m.App)
	st.Name = strings.Clone(m.Name)
	st.Source = strings.Clone(m.Source)
	st.Unit = strings.Clone(m.Unit)
	st.Kind = m.Kind
	return st
}

// floorMod returns x mod m in [0, m) for m > 0.
func floorMod(x, m int64) int64 {
	r := x % m
	if r < 0 {
		r += m
	}
	return r
}

// Flush returns the buckets whose deadline has passed, Start+Resolution+Grace
// <= now, oldest first, each with its Series sorted by App, Name then Source. It
// returns nil when none is due. Measurements for those buckets arriving
// afterwards are counted as late. Safe for concurrent use.
func (a *Aggregator) Flush(now time.Time) []*Bucket {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	return a.toBuckets(a.collect(a.dueCutoff(now)))
}

// FlushAll returns every open bucket, including the current partial one and
// any ahead of it, oldest first; for shutdown. Measurements arriving
// afterwards for those buckets are counted as late. Safe for concurrent use.
func (a *Aggregator) FlushAll() []*Bucket {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	return a.toBuckets(a.collect(a.newestOpen()))
}

// dueCutoff returns the start of the newest bucket whose deadline has passed
// at now.
func (a *Aggregator) dueCutoff(now time.Time) int64 {
	// start + res + grace <= now  ⇔  start <= now - res - grace.
	limit := now.Add(-a.cfg.Resolution - a.cfg.Grace)
	// Floor to whole seconds, then to the resolution.
	sec := limit.Unix()
	return sec - floorMod(sec, a.resSec)
}

// newestOpen returns the start of the newest open bucket, or MinInt64.
func (a *Aggregator) newestOpen() int64 {
	newest := int64(math.MinInt64)
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		for start := range sh.buckets {
			newest = max(newest, start)
		}
		sh.mu.Unlock()
	}
	return newest
}

// collect marks every bucket starting at or before cutoff as flushed and
// removes them from the shards. Called with flushMu held.
func (a *Aggregator) collect(cutoff int64) []*shardBucket {
	if cutoff <= a.flushed.Load() {
		return nil
	}
	// Publish first: an Add taking a shard lock after we release it sees the
	// new mark and counts its measurement late instead of reopening a bucket
	// that was already handed out.
	a.flushed.Store(cutoff)
	out := a.remove(cutoff)
	a.forget(cutoff, out)
	return out
}

// remove takes the buckets starting at or before cutoff out of the shards
// and returns them oldest first. Called with flushMu held.
func (a *Aggregator) remove(cutoff int64) []*shardBucket {
	var out []*shardBucket
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		for start, b := range sh.buckets {
			if start <= cutoff {
				delete(sh.buckets, start)
				out = append(out, b)
				a.open.Add(-int64(b.len()))
			}
		}
		if sh.cur != nil && sh.cur.start <= cutoff {
			sh.cur = nil
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(out, func(x, y *shardBucket) int { return cmp.Compare(x.start, y.start) })
	return out
}

// CompareStates orders states by App, Name then Source: the order of a
// flushed bucket's series, for slices.SortFunc.
func CompareStates(x, y *State) int {
	return cmp.Or(strings.Compare(x.App, y.App), strings.Compare(x.Name, y.Name), strings.Compare(x.Source, y.Source))
}

// groupStates calls f once per bucket start with every state of that bucket
// (CompareStates order), oldest first, and recycles the shard buckets. With
// flushed, the buckets, their series and the saturated sketches are counted
// in Stats.
func (a *Aggregator) groupStates(parts []*shardBucket, flushed bool, f func(start int64, states []*State)) {
	var states []*State
	for i := 0; i < len(parts); {
		start := parts[i].start
		states = states[:0]
		j := i
		for ; j < len(parts) && parts[j].start == start; j++ {
			states = slices.AppendSeq(states, maps.Values(parts[j].series))
			for _, ab := range parts[j].apps {
				states = slices.AppendSeq(states, maps.Values(ab.series))
			}
			parts[j].clear()
			a.buckets.Put(parts[j])
		}
		i = j
		if len(states) == 0 {
			continue // every series was dropped
		}
		slices.SortFunc(states, CompareStates)
		if flushed {
			a.bucketsFlushed.Add(1)
			a.seriesFlushed.Add(uint64(len(states)))
			for _, st := range states {
				if st.saturated() {
					a.sketchSaturated.Add(1)
				}
			}
		}
		f(start, states)
	}
}

func (a *Aggregator) toBuckets(parts []*shardBucket) []*Bucket {
	var out []*Bucket
	a.groupStates(parts, true, func(start int64, states []*State) {
		out = append(out, (&StateBucket{Start: time.Unix(start, 0).UTC(), Period: a.cfg.Resolution, States: states}).Bucket())
		for _, st := range states {
			if st.Kind != metric.Measure { // a Measure's State is handed over whole: not recycled
				st.reset()
				a.states.Put(st)
			}
		}
	})
	return out
}

// StateBucket is a flushed bucket in mergeable form: one State per series,
// sorted by Name then Source. Not safe for concurrent use.
type StateBucket struct {
	Start  time.Time
	Period time.Duration
	States []*State
}

// Bucket returns the statistics of every state in b. It may reorder the
// states' raw values.
func (b *StateBucket) Bucket() *Bucket {
	out := &Bucket{Start: b.Start, Period: b.Period, Series: make([]Series, len(b.States))}
	for i, st := range b.States {
		out.Series[i] = st.Series()
		if st.Kind == metric.Measure {
			out.Series[i].State = st
		}
	}
	return out
}

func (a *Aggregator) toStateBuckets(parts []*shardBucket) []*StateBucket {
	var out []*StateBucket
	a.groupStates(parts, false, func(start int64, states []*State) {
		out = append(out, &StateBucket{Start: time.Unix(start, 0).UTC(), Period: a.cfg.Resolution, States: slices.Clone(states)})
	})
	return out
}

// Stats returns the cumulative counters. Safe for concurrent use.
func (a *Aggregator) Stats() Stats {
	s := Stats{
		DroppedInvalid:     a.dropped[appstats.Invalid].Load(),
		DroppedOutOfRange:  a.dropped[appstats.OutOfRange].Load(),
		DroppedFuture:      a.dropped[appstats.Future].Load(),
		DroppedOld:         a.dropped[appstats.Old].Load(),
		DroppedSeriesLimit: a.dropped[appstats.SeriesLimit].Load(),
		DroppedSourceShare: a.dropped[appstats.SourceShare].Load(),
		DroppedAppShare:    a.dropped[appstats.AppShare].Load(),
		DroppedOpenLimit:   a.dropped[appstats.OpenLimit].Load(),
		BucketsFlushed:     a.bucketsFlushed.Load(),
		SeriesFlushed:      a.seriesFlushed.Load(),
		SketchSaturated:    a.sketchSaturated.Load(),
		OpenSeries:         a.open.Load(),
	}
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		s.Added += sh.added
		s.Late += sh.late
		s.DroppedConflict += sh.droppedConflict
		sh.mu.Unlock()
	}
	return s
}
