package view

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/throttle"
)

// AllSource is the reserved source name of the all-dynos line of every
// metric. A real series with this source is dropped and counted as a
// conflict.
const AllSource = "*"

// Defaults of Config.
const (
	// DefaultWindow is how far back the history reaches.
	DefaultWindow = 6 * time.Hour
	// DefaultMaxPoints caps the points of one line whatever the resolution:
	// 6 h at 30 s or more, 2 h at 10 s. A full line takes MaxPoints*8 bytes
	// for a count# or sample# series and MaxPoints*40 for a measure# series
	// (see BenchmarkMemoryPerSeries).
	DefaultMaxPoints = 720
	// DefaultMaxSeries caps the per-dyno lines over all metrics (each metric
	// adds its all-dynos line on top). At 360 points a count# or sample#
	// series takes about 3.5 KB, a measure# series about 18 KB: at most
	// about 36 MB at the cap (see BenchmarkMemoryPerSeries).
	DefaultMaxSeries = 2000
	// dropLogEvery is how often at most a drop is logged.
	dropLogEvery = time.Minute
)

// A source is ended when its newest point is EndedAfter buckets and at
// least EndedAfterMin older than the newest bucket of the view: a dyno that
// stopped, or one that has not reported for a while.
const (
	EndedAfter    = 3
	EndedAfterMin = 2 * time.Minute
)

// Stat names a per-point value. Counts have StatSum, samples StatLast,
// measures one of the others (StatMedian by default).
type Stat uint8

// The stats a point holds. For measures the order is the order of values in
// a stored point.
const (
	StatMedian Stat = iota
	StatP95
	StatP99
	StatMax
	StatCount
	StatSum
	StatLast
)

var statNames = [...]string{"median", "perc95", "perc99", "max", "count", "sum", "last"}

// String returns the API name of s.
func (s Stat) String() string { return statNames[s] }

// measureStride is the number of values stored per point of a measure.
const measureStride = 5

// ParseStat returns the measure statistic named s ("" means median).
func ParseStat(s string) (Stat, error) {
	if s == "" {
		return StatMedian, nil
	}
	if i := slices.Index(statNames[:measureStride], s); i >= 0 {
		return Stat(i), nil
	}
	return 0, fmt.Errorf("stat=%q: want median, perc95, perc99, max or count", s)
}

// Config bounds a History. Zero values mean the defaults.
type Config struct {
	// Resolution is the bucket width; buckets of another Period are dropped
	// and counted. Required.
	Resolution time.Duration
	// Window is how far back the history reaches (DefaultWindow).
	Window time.Duration
	// MaxPoints caps the points per line (DefaultMaxPoints).
	MaxPoints int
	// MaxSeries caps the per-dyno lines (DefaultMaxSeries).
	MaxSeries int
	// Logger receives a warning, at most once a minute, when series are
	// dropped. nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock of the drop log's rate limit; nil means time.Now.
	Now func() time.Time
}

// ErrConfig is wrapped by New's errors.
var ErrConfig = errors.New("view: invalid config")

// Stats are the History's counters and sizes. Counters are cumulative.
type Stats struct {
	Metrics int   `metric:"-"`            // metrics held
	Series  int   `metric:"series,gauge"` // per-dyno lines held (the all-dynos lines not included)
	Values  int64 `metric:"values,gauge"` // float64 slots allocated for points over all lines
	Buckets int64 `metric:"-"`            // buckets written

	DroppedSeriesLimit int64 `metric:"dropped,drop"`        // series of a bucket dropped because MaxSeries lines exist, all updated in that bucket or later
	Evicted            int64 `metric:"evicted,drop"`        // lines no longer shown to make room for new series at MaxSeries (the least recently updated)
	DroppedConflict    int64 `metric:"dropped,drop"`        // series dropped: source AllSource, or kind/unit unlike the metric's in the bucket
	DroppedUnsafe      int64 `metric:"dropped,drop"`        // series not shown: name or source with control, format or bidirectional-override characters
	DroppedPeriod      int64 `metric:"dropped,drop"`        // series dropped: their bucket's Period is not Resolution
	DroppedOld         int64 `metric:"dropped,drop"`        // series dropped: their bucket is older than the window
	Resets             int64 `metric:"-"`                   // metrics whose history was cleared because their kind or unit changed
	Busy               int64 `metric:"busy,drop"`           // API requests answered 503 because MaxConcurrentRequests were running or HandlerConfig.Budget was exhausted
	FailedLogins       int64 `metric:"failed_logins,drop"`  // requests with wrong credentials (401)
	LoginsRefused      int64 `metric:"logins_refused,drop"` // requests refused 429 unchecked: their client failed too often (see FreeLoginFailures)
}

// History holds the recent buckets of every series. Write and the readers
// are safe for concurrent use.
type History struct {
	cfg    Config
	period int64 // seconds
	points int   // points per line: min(Window/Resolution, MaxPoints)

	mu      sync.RWMutex
	metrics map[string]*metricHist
	series  int   // per-dyno lines
	latest  int64 // bucket index (start/period) of the newest bucket written
	version uint64
	stats   Stats
	dropLog *throttle.Logger // drops, at most once per dropLogEvery per message
}

// metricHist is the history of one metric: a line per source and the
// all-dynos line.
type metricHist struct {
	key     string // in History.metrics: histKey(app, name)
	app     string // multi-app mode; "" otherwise
	name    string
	kind    metric.Kind
	unit    string
	lines   map[string]*line
	all     line
	updated int64  // bucket index of the newest point
	version uint64 // History.version when it last changed
}

// New returns an empty History.
func New(cfg Config) (*History, error) {
	if cfg.Resolution < time.Second || cfg.Resolution%time.Second != 0 {
		return nil, fmt.Errorf("%w: resolution %s: want whole seconds, at least 1s", ErrConfig, cfg.Resolution)
	}
	cfg.Window = cmp.Or(cfg.Window, DefaultWindow)
	cfg.MaxPoints = cmp.Or(cfg.MaxPoints, DefaultMaxPoints)
	cfg.MaxSeries = cmp.Or(cfg.MaxSeries, DefaultMaxSeries)
	if cfg.Window < cfg.Resolution || cfg.MaxPoints < 1 || cfg.MaxSeries < 1 {
		return nil, fmt.Errorf("%w: window %s, max points %d, max series %d: want window ≥ resolution and positive caps",
			ErrConfig, cfg.Window, cfg.MaxPoints, cfg.MaxSeries)
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &History{
		cfg:     cfg,
		period:  int64(cfg.Resolution / time.Second),
		points:  min(int(cfg.Window/cfg.Resolution), cfg.MaxPoints),
		metrics: make(map[string]*metricHist),
		dropLog: throttle.New(cfg.Logger, dropLogEvery, cfg.Now),
	}, nil
}

// update is what Write keeps of one metric in one bucket, computed before
// the lock is taken.
type update struct {
	app        string
	name, unit string
	kind       metric.Kind
	all        [measureStride]float64
	sources    []string
	values     []float64 // stride(kind) values per source
}

// Write adds a bucket to the history: for each series its point, and for
// each metric the all-dynos point. It keeps nothing of b. A bucket for a
// time the history already holds replaces the points it carries.
func (h *History) Write(b *aggregate.Bucket) {
	if b.Period != h.cfg.Resolution {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.stats.DroppedPeriod += int64(len(b.Series))
		h.logDropLocked("bucket period differs from the resolution", "period", b.Period, "resolution", h.cfg.Resolution, "series", len(b.Series))
		return
	}
	var conflicts, unsafe int64
	var ups []update
	for i := 0; i < len(b.Series); {
		j := i + 1
		for j < len(b.Series) && b.Series[j].Name == b.Series[i].Name && b.Series[j].App == b.Series[i].App {
			j++
		}
		u, c, us := summarize(b.Series[i:j])
		conflicts += c
		unsafe += us
		if len(u.sources) > 0 {
			ups = append(ups, u)
		}
		i = j
	}
	idx := b.Start.Unix() / h.period

	h.mu.Lock()
	defer h.mu.Unlock()
	if idx <= h.latest-int64(h.points) {
		h.stats.DroppedOld += int64(len(b.Series))
		h.logDropLocked("bucket older than the window (VIEW_WINDOW, VIEW_MAX_POINTS)", "bucket", b.Start, "series", len(b.Series))
		return
	}
	h.version++
	h.stats.Buckets++
	h.stats.DroppedConflict += conflicts
	h.stats.DroppedUnsafe += unsafe
	if unsafe > 0 {
		h.logDropLocked("series not shown: name or source with a control, format or bidirectional-override character (it could make the page show another name)", "dropped", unsafe)
	}
	if conflicts > 0 {
		h.logDropLocked("series left out: source \""+AllSource+"\" is reserved for all dynos, or kind or unit unlike the other dynos' in the bucket", "dropped", conflicts)
	}
	h.makeRoom(ups, idx)
	var dropped int64
	for i := range ups {
		dropped += h.apply(&ups[i], idx)
	}
	h.stats.DroppedSeriesLimit += dropped
	if idx > h.latest {
		h.latest = idx
		h.evict()
	}
	if dropped > 0 {
		h.logDropLocked("series cap reached: new series not shown (VIEW_MAX_SERIES)", "dropped", dropped, "max_series", h.cfg.MaxSeries)
	}
}

// makeRoom evicts, when the bucket at idx brings more new series than the
// cap leaves room for, the least recently updated lines (those whose newest
// point is oldest, older than idx, and not in this bucket) to make room for
// them: the newest metrics and dynos stay visible, the series that stopped
// reporting go first. Evictions are counted (Stats.Evicted) and logged.
// h.mu is held.
func (h *History) makeRoom(ups []update, idx int64) {
	over := h.series + h.newSeries(ups, nil) - h.cfg.MaxSeries
	if over <= 0 {
		return
	}
	inBucket := make(map[*line]bool) // built only at the cap
	h.newSeries(ups, inBucket)
	type cand struct {
		m      *metricHist
		src    string
		newest int64
	}
	var cands []cand
	for _, m := range h.metrics {
		for src, l := range m.lines {
			if l.newest < idx && !inBucket[l] {
				cands = append(cands, cand{m, src, l.newest})
			}
		}
	}
	slices.SortFunc(cands, func(a, b cand) int { return cmp.Compare(a.newest, b.newest) })
	evicted := cands[:min(over, len(cands))]
	for _, c := range evicted {
		h.removeLine(c.m, c.src)
		if len(c.m.lines) == 0 {
			h.removeMetric(c.m)
		}
	}
	h.stats.Evicted += int64(len(evicted))
	if len(evicted) > 0 {
		h.logDropLocked("series cap reached: the least recently updated series no longer shown, to show new ones (VIEW_MAX_SERIES)",
			"evicted", len(evicted), "max_series", h.cfg.MaxSeries)
	}
}

// newSeries counts the series of ups that have no line yet; it puts the
// lines they do have in inBucket, when not nil. h.mu is held.
func (h *History) newSeries(ups []update, inBucket map[*line]bool) int {
	need := 0
	for i := range ups {
		m := h.metrics[histKey(ups[i].app, ups[i].name)]
		for _, src := range ups[i].sources {
			switch {
			case m == nil || m.lines[src] == nil || m.kind != ups[i].kind || m.unit != ups[i].unit:
				need++
			case inBucket != nil:
				inBucket[m.lines[src]] = true
			}
		}
	}
	return need
}

// stride is the number of values per point of kind k.
func stride(k metric.Kind) int {
	if k == metric.Measure {
		return measureStride
	}
	return 1
}

// summarize computes the per-source values and the all-dynos point of one
// metric's series (same name, sorted by source). The first series that is
// not AllSource sets the kind and unit; series of another kind or unit, or
// with source AllSource, are left out and counted; all are left out, counted
// as unsafe, when the name is not safe to show (metric.UnsafeText).
func summarize(ss []aggregate.Series) (u update, conflicts, unsafe int64) {
	if metric.UnsafeText(ss[0].Name) {
		return u, 0, int64(len(ss))
	}
	first := slices.IndexFunc(ss, func(s aggregate.Series) bool { return s.Source != AllSource })
	if first < 0 {
		return u, int64(len(ss)), 0
	}
	u.app, u.name, u.kind, u.unit = ss[first].App, ss[first].Name, ss[first].Kind, ss[first].Unit
	st := stride(u.kind)
	u.sources = make([]string, 0, len(ss))
	u.values = make([]float64, 0, len(ss)*st)
	var merged *aggregate.State
	var sum float64
	var count, noState int64
	maxV := math.Inf(-1)
	for i := range ss {
		s := &ss[i]
		if s.Source == AllSource || s.Kind != u.kind || s.Unit != u.unit {
			conflicts++
			continue
		}
		if metric.UnsafeText(s.Source) {
			unsafe++
			continue
		}
		u.sources = append(u.sources, s.Source)
		switch u.kind {
		case metric.Counter:
			u.values = append(u.values, s.Sum)
			sum += s.Sum
		case metric.Sample:
			u.values = append(u.values, s.Last)
			sum += s.Last
		case metric.Measure:
			u.values = append(u.values, s.Median, s.P95, s.P99, s.Max, float64(s.Count))
			count += s.Count
			maxV = max(maxV, s.Max)
			if s.State == nil {
				noState++
				continue
			}
			if merged == nil {
				merged = aggregate.NewState(s.Name, s.Source, s.Unit, s.Kind)
				merged.App = s.App
			}
			// Merge requires equal names; the merged state belongs to no
			// dyno, so take on each one's source before merging it.
			merged.Source = s.Source
			if err := merged.Merge(s.State); err != nil {
				noState++
			}
		}
	}
	n := len(u.sources)
	switch u.kind {
	case metric.Counter:
		u.all[0] = sum
	case metric.Sample:
		u.all[0] = sum / float64(n)
	case metric.Measure:
		if merged != nil && noState == 0 {
			ms := merged.Series()
			u.all = [measureStride]float64{ms.Median, ms.P95, ms.P99, ms.Max, float64(ms.Count)}
		} else {
			// Without every distribution only the exact statistics remain.
			u.all = [measureStride]float64{math.NaN(), math.NaN(), math.NaN(), maxV, float64(count)}
		}
	}
	return u, conflicts, unsafe
}

// apply writes one metric's update at bucket index idx and returns the
// number of series dropped for the series cap. h.mu is held.
func (h *History) apply(u *update, idx int64) (dropped int64) {
	key := histKey(u.app, u.name)
	m := h.metrics[key]
	if m != nil && (m.kind != u.kind || m.unit != u.unit) {
		h.stats.Resets++
		h.removeMetric(m)
		m = nil
	}
	st := stride(u.kind)
	for i, src := range u.sources {
		var l *line
		if m != nil {
			l = m.lines[src]
		}
		if l == nil {
			if h.series >= h.cfg.MaxSeries {
				dropped++
				continue
			}
			if m == nil {
				m = &metricHist{key: key, app: u.app, name: u.name, kind: u.kind, unit: u.unit, lines: make(map[string]*line)}
				h.metrics[key] = m
			}
			l = &line{}
			m.lines[src] = l
			h.series++
		}
		l.put(idx, u.values[i*st:(i+1)*st], h.points)
	}
	if m == nil {
		return dropped
	}
	m.all.put(idx, u.all[:st], h.points)
	m.updated = max(m.updated, idx)
	m.version = h.version
	return dropped
}

// evict removes the lines whose newest point left the window, and the
// metrics left without lines. h.mu is held.
func (h *History) evict() {
	oldest := h.latest - int64(h.points) + 1
	for _, m := range h.metrics {
		if m.updated < oldest {
			h.removeMetric(m)
			continue
		}
		for src, l := range m.lines {
			if l.newest < oldest {
				h.removeLine(m, src)
			}
		}
	}
}

// removeLine forgets m's line of src. h.mu is held.
func (h *History) removeLine(m *metricHist, src string) {
	delete(m.lines, src)
	h.series--
	m.version = h.version
}

// removeMetric forgets m. h.mu is held.
func (h *History) removeMetric(m *metricHist) {
	h.series -= len(m.lines)
	delete(h.metrics, m.key)
}

// histKey is the key of app's metric name in History.metrics: the name
// alone in single-app mode. App names hold no NUL.
func histKey(app, name string) string {
	if app == "" {
		return name
	}
	return app + "\x00" + name
}

// Stats returns the counters and sizes. It counts Values over every line:
// a few thousand lines, once per self-metrics interval.
func (h *History) Stats() Stats {
	h.mu.RLock()
	defer h.mu.RUnlock()
	s := h.stats
	s.Metrics, s.Series = len(h.metrics), h.series
	for _, m := range h.metrics {
		s.Values += int64(len(m.all.vals))
		for _, l := range m.lines {
			s.Values += int64(len(l.vals))
		}
	}
	return s
}

// countLogin counts a failed login (true) or a refused one, and returns
// the failed logins so far.
func (h *History) countLogin(failed bool) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if failed {
		h.stats.FailedLogins++
	} else {
		h.stats.LoginsRefused++
	}
	return h.stats.FailedLogins
}

// logDropLocked logs a drop at most once per dropLogEvery for each
// message. h.mu is held.
func (h *History) logDropLocked(msg string, args ...any) {
	h.dropLog.Log(slog.LevelWarn, msg, "view: "+msg, args...)
}

// ended reports whether a line whose newest point is at bucket index newest
// counts as ended. h.mu is held.
func (h *History) ended(newest int64) bool {
	behind := h.latest - newest
	return behind >= EndedAfter && behind*h.period >= int64(EndedAfterMin/time.Second)
}

// sortedSources returns m's sources in order.
func sortedSources(m *metricHist) []string { return slices.Sorted(maps.Keys(m.lines)) }
