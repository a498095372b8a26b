package emitter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	metrics "github.com/rcrowley/go-metrics"
)

// PipeBuf is the largest write the Emitter issues, in whole lines (a line
// longer than PipeBuf is written alone). Writes of at most PIPE_BUF bytes to a
// pipe are atomic on Linux, so lines stay intact when other processes of the
// dyno write to the same stdout pipe.
const PipeBuf = 4096

// Header is the first pair of every line, telling metric lines apart from the
// application's other output.
const Header = "at=metrics"

// Stats are the Emitter's cumulative counters, for export as self-metrics.
type Stats struct {
	Emissions         uint64 // completed emissions (WriteTo, Flush, Run ticks)
	Lines             uint64 // lines written
	Bytes             uint64 // bytes written
	WriteErrors       uint64 // emissions whose write failed
	NonFinite         uint64 // values skipped because they were NaN or ±Inf
	OversizedPairs    uint64 // pairs dropped because they cannot fit a line (never expected)
	SkippedNames      uint64 // registry names skipped: empty, or not a metric the Emitter prints (healthchecks)
	ReservoirReplaced uint64 // per-interval sample values counted but not kept for percentiles (see DefaultSampleSize)
	Statsd            StatsdStats
}

// Emitter prints the metrics of a go-metrics registry as l2met lines. Create
// it with New. All methods are safe for concurrent use; emissions are
// serialized.
type Emitter struct {
	cfg    Config
	visitF func(string, any)

	mu      sync.Mutex // serializes emissions; guards everything below
	gen     uint64
	index   map[string]*entry
	sorted  []*entry
	rt      *runtimeStats
	changed bool
	seen    int
	lines   lines
	pair    []byte
	scratch []int64

	statsd  *statsdBridge
	conn    net.PacketConn
	runOnce atomic.Bool
	bg      background // Start and Stop

	emissions, lineCount, bytes, writeErrors atomic.Uint64
	nonFinite, oversized, skipped, replaced  atomic.Uint64
}

// New validates cfg, fills in defaults and returns an Emitter. When
// cfg.StatsdAddr is set it also binds the UDP socket, so a port in use fails
// here; Run closes it, and Close does when Run is never called.
func New(cfg Config) (*Emitter, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Writer = cmp.Or[io.Writer](cfg.Writer, os.Stdout)
	header := Header
	if cfg.Source != "" {
		header += " source=" + cfg.Source
	}
	e := &Emitter{
		cfg:     cfg,
		index:   make(map[string]*entry),
		lines:   lines{max: cfg.MaxLineBytes, header: []byte(header)},
		changed: true,
		statsd:  newStatsdBridge(cfg.Registry),
	}
	e.visitF = e.visit
	if cfg.Runtime {
		e.rt = newRuntimeStats(cfg.Prefix)
	}
	if cfg.StatsdAddr != "" {
		conn, err := net.ListenPacket("udp", cfg.StatsdAddr)
		if err != nil {
			return nil, fmt.Errorf("emitter: statsd listener on %q: %w", cfg.StatsdAddr, err)
		}
		e.conn = conn
	}
	return e, nil
}

// StatsdAddr returns the address the statsd listener is bound to, or nil
// without one. Useful with a ":0" port.
func (e *Emitter) StatsdAddr() net.Addr {
	if e.conn == nil {
		return nil
	}
	return e.conn.LocalAddr()
}

// HandleStatsd feeds one statsd packet (lines separated by '\n') into the
// registry, as the listener does: for statsd arriving by other means.
func (e *Emitter) HandleStatsd(packet []byte) { e.statsd.handlePacket(packet) }

// Close releases the statsd socket when Run was never called. It does not
// emit.
func (e *Emitter) Close() error {
	if e.conn == nil || e.runOnce.Load() {
		return nil
	}
	return e.conn.Close()
}

// Stats returns the cumulative counters.
func (e *Emitter) Stats() Stats {
	return Stats{
		Emissions:         e.emissions.Load(),
		Lines:             e.lineCount.Load(),
		Bytes:             e.bytes.Load(),
		WriteErrors:       e.writeErrors.Load(),
		NonFinite:         e.nonFinite.Load(),
		OversizedPairs:    e.oversized.Load(),
		SkippedNames:      e.skipped.Load(),
		ReservoirReplaced: e.replaced.Load(),
		Statsd:            e.statsd.snapshot(),
	}
}

// Run emits every Interval (by default just before each wall-clock multiple
// of it, see AlignedTicker) until ctx ends, then emits once more so that
// nothing counted before shutdown is lost (Heroku sends SIGTERM and waits
// 30 s), and returns after that final emission: a program must wait for Run
// to return before it exits (Start and Stop do that for you). With a statsd listener it serves it meanwhile, and at shutdown reads
// what is already queued on the socket before the final emission. Write
// errors of the periodic emissions are logged; Run returns the final
// emission's error, or nil. Call Run once.
func (e *Emitter) Run(ctx context.Context) error {
	if !e.runOnce.CompareAndSwap(false, true) {
		return errors.New("emitter: Run called twice")
	}
	var serving sync.WaitGroup
	if e.conn != nil {
		serving.Go(func() { e.statsd.serve(ctx, e.conn, e.cfg.Logger) })
	}
	ticks, stop := e.cfg.NewTicker(e.cfg.Interval)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			var closeErr error
			serving.Wait()
			if e.conn != nil {
				if err := e.conn.Close(); err != nil {
					closeErr = fmt.Errorf("emitter: closing statsd listener: %w", err)
				}
			}
			return errors.Join(e.Flush(), closeErr)
		case <-ticks:
			if err := e.Flush(); err != nil {
				e.cfg.Logger.Warn("emitter: emission failed", "err", err)
			}
		}
	}
}

// Flush emits once to the configured Writer.
func (e *Emitter) Flush() error {
	_, err := e.WriteTo(e.cfg.Writer)
	return err
}

// WriteTo emits once to w and returns the bytes written. Every call is an
// emission: counters, meters, sets and per-interval samples start a new
// interval, whatever w is. Lines are written in whole-line chunks of at most
// PipeBuf bytes.
func (e *Emitter) WriteTo(w io.Writer) (int64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.collect()
	e.lines.reset()
	for _, en := range e.sorted {
		e.emit(en)
	}
	e.lines.end()
	n, err := e.write(w)
	e.emissions.Add(1)
	e.bytes.Add(uint64(n))
	if err != nil {
		e.writeErrors.Add(1)
		return n, fmt.Errorf("emitter: write: %w", err)
	}
	e.lineCount.Add(uint64(len(e.lines.ends)))
	return n, nil
}

func (e *Emitter) write(w io.Writer) (int64, error) {
	var total int64
	ends, start := e.lines.ends, 0
	for i, end := range ends {
		// Write the lines from start through this one when the next would
		// not fit with them, or this is the last.
		if i+1 == len(ends) || ends[i+1]-start > PipeBuf {
			n, err := w.Write(e.lines.buf[start:end])
			total += int64(n)
			if err != nil {
				return total, err
			}
			start = end
		}
	}
	return total, nil
}

// entry kinds.
const (
	kindSkip      = iota // registered, but nothing to print
	kindCounter          // metrics.Counter or Meter: count#name = change since last emission
	kindGauge            // metrics.Gauge: sample#name
	kindGaugeF           // metrics.GaugeFloat64: sample#name
	kindSample           // per-interval *Sample (Timer, NewHistogram)
	kindHistogram        // plain go-metrics Histogram
	kindTimer            // plain go-metrics Timer
	kindSet              // *Set: count#name = distinct values this interval
	kindRuntime          // Go runtime metric
)

// statistic suffixes of histograms and timers, in print order.
var statSuffixes = [...]string{".count", ".min", ".mean", ".median", ".perc95", ".perc99", ".max"}

// entry is one registry name with its pre-rendered pair keys and state.
type entry struct {
	name   string
	sortBy string // sanitized, prefixed full name
	metric any
	kind   uint8
	sample *Sample
	keys   []string // "count#full=" …; for samples one per statSuffixes
	last   int64    // counter/meter/histogram count at the previous emission
	seen   uint64
	rt     int // index into runtimeStats for kindRuntime
}

func (e *Emitter) visit(name string, m any) {
	en := e.index[name]
	if en == nil || !sameMetric(en.metric, m) {
		en = e.newEntry(name, m)
		e.index[name] = en
		e.changed = true
	}
	en.seen = e.gen
	e.seen++
}

// sameMetric compares registry values without panicking on non-comparable
// dynamic types (metrics.FunctionalGauge holds a func).
func sameMetric(a, b any) bool {
	ta := reflect.TypeOf(a)
	if ta != reflect.TypeOf(b) {
		return false
	}
	if !ta.Comparable() {
		return true
	}
	return a == b
}

func (e *Emitter) newEntry(name string, m any) *entry {
	en := &entry{name: name, metric: m}
	switch v := m.(type) {
	case *Timer:
		en.kind, en.sample = kindSample, v.intervalSample
	case *Set:
		en.kind = kindSet
	case metrics.Counter, metrics.Meter:
		en.kind = kindCounter
	case metrics.Timer:
		en.kind = kindTimer
	case metrics.Histogram:
		if s, ok := v.Sample().(*Sample); ok {
			en.kind, en.sample = kindSample, s
		} else {
			en.kind = kindHistogram
		}
	case metrics.GaugeFloat64:
		en.kind = kindGaugeF
	case metrics.Gauge:
		en.kind = kindGauge
	default:
		en.kind = kindSkip
	}
	if en.kind == kindSkip || name == "" {
		en.kind = kindSkip
		e.skipped.Add(1)
		return en
	}
	full := appendName(nil, e.cfg.Prefix, name)
	en.sortBy = string(full)
	switch en.kind {
	case kindCounter, kindSet:
		en.keys = []string{pairKey("count", full, "")}
	case kindGauge, kindGaugeF:
		en.keys = []string{pairKey("sample", full, "")}
	default:
		en.keys = []string{pairKey("count", full, statSuffixes[0])}
		for _, s := range statSuffixes[1:] {
			en.keys = append(en.keys, pairKey("sample", full, s))
		}
	}
	return en
}

// collect walks the registry and rebuilds the sorted entry list when the set
// of metrics changed since the previous emission.
func (e *Emitter) collect() {
	e.gen++
	e.seen = 0
	e.cfg.Registry.Each(e.visitF)
	if !e.changed && e.seen == len(e.index) {
		return
	}
	e.sorted = e.sorted[:0]
	for name, en := range e.index {
		if en.seen != e.gen {
			delete(e.index, name)
			continue
		}
		if en.kind != kindSkip {
			e.sorted = append(e.sorted, en)
		}
	}
	if e.rt != nil {
		e.sorted = append(e.sorted, e.rt.entries...)
	}
	slices.SortFunc(e.sorted, func(a, b *entry) int {
		return cmp.Or(strings.Compare(a.sortBy, b.sortBy), strings.Compare(a.name, b.name))
	})
	e.changed = false
}

// addPair appends the pair key+value (already in e.pair) to the lines.
func (e *Emitter) addPair() {
	if !e.lines.add(e.pair) {
		e.oversized.Add(1)
	}
}

func (e *Emitter) addInt(key string, v int64) {
	e.pair = strconv.AppendInt(append(e.pair[:0], key...), v, 10)
	e.addPair()
}

func (e *Emitter) addFloat(key string, v float64, unit string) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		e.nonFinite.Add(1)
		return
	}
	e.pair = append(AppendValue(append(e.pair[:0], key...), v), unit...)
	e.addPair()
}

func (e *Emitter) emit(en *entry) {
	switch en.kind {
	case kindCounter:
		e.addDelta(en, en.metric.(interface{ Count() int64 }).Count())
	case kindGauge:
		e.addInt(en.keys[0], en.metric.(metrics.Gauge).Value())
	case kindGaugeF:
		e.addFloat(en.keys[0], en.metric.(metrics.GaugeFloat64).Value(), "")
	case kindSet:
		n, overflow := en.metric.(*Set).drain()
		e.statsd.setOverflow.Add(overflow)
		e.addInt(en.keys[0], n)
	case kindSample:
		e.emitSample(en)
	case kindHistogram:
		h := en.metric.(metrics.Histogram)
		if e.addDelta(en, h.Count()) > 0 {
			e.emitPlain(en, h.Snapshot(), 1, "")
		}
	case kindTimer:
		t := en.metric.(metrics.Timer)
		if e.addDelta(en, t.Count()) > 0 {
			e.emitPlain(en, t.Snapshot(), float64(time.Millisecond), "ms")
		}
	case kindRuntime:
		e.rt.emit(e, en)
	}
}

func (e *Emitter) emitSample(en *entry) {
	s := en.sample
	var st intervalStats
	e.scratch, st = s.drain(e.scratch)
	e.replaced.Add(st.replaced)
	e.addInt(en.keys[0], st.count)
	if st.count == 0 {
		return
	}
	v := e.scratch
	slices.Sort(v)
	e.addStats(en, s.scale, s.unit, float64(st.min), float64(st.sum)/float64(st.count),
		quantile(v, 0.5), quantile(v, 0.95), quantile(v, 0.99), float64(st.max))
}

// addStats prints min, mean, median, perc95, perc99 and max (in that order
// in vs), each divided by sc, under the entry's keys after the count.
func (e *Emitter) addStats(en *entry, sc float64, unit string, vs ...float64) {
	for i, v := range vs {
		e.addFloat(en.keys[i+1], v/sc, unit)
	}
}

// addDelta prints count#name.count as the change of a cumulative count since
// the previous emission and returns it.
func (e *Emitter) addDelta(en *entry, count int64) int64 {
	d := count - en.last
	en.last = count
	e.addInt(en.keys[0], d)
	return d
}

// plainStats is what Histogram and Timer snapshots have in common.
type plainStats interface {
	Min() int64
	Max() int64
	Mean() float64
	Percentiles([]float64) []float64
}

var plainQuantiles = []float64{0.5, 0.95, 0.99}

// emitPlain prints the statistics of a go-metrics histogram or timer that
// does not use a per-interval Sample: they are the sample's own
// (exponentially decayed for go-metrics' defaults). The caller prints them
// only when the interval saw values.
func (e *Emitter) emitPlain(en *entry, h plainStats, sc float64, unit string) {
	ps := h.Percentiles(plainQuantiles)
	e.addStats(en, sc, unit, float64(h.Min()), h.Mean(), ps[0], ps[1], ps[2], float64(h.Max()))
}
