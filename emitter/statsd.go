package emitter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	metrics "github.com/rcrowley/go-metrics"

	"github.com/dynometrics/dynometrics/internal/decimal"
)

// Bounds of the statsd bridge.
const (
	// MaxStatsdPacket is the read buffer of the statsd listener: the largest
	// UDP payload. Longer datagrams are truncated by the kernel and their last
	// line is then malformed or wrong; statsd clients send ≤ 1,432 bytes.
	MaxStatsdPacket = 65535
	// MaxStatsdNameLen is the longest accepted statsd metric name.
	MaxStatsdNameLen = MaxNameLen
	// MaxStatsdValue bounds the magnitude of counter and histogram values,
	// of a counter's value divided by its sample rate, and of gauges (after
	// a ±delta too): 2^53, the largest float64 integer step of 1.
	MaxStatsdValue = 1 << 53
	// StatsdDrainTimeout is how long Run keeps reading the statsd socket at
	// shutdown for packets already queued, before the final emission.
	StatsdDrainTimeout = 100 * time.Millisecond
	// MaxSetSize bounds the distinct values a Set keeps per interval; further
	// new values are counted in StatsdStats.SetOverflow and not added.
	MaxSetSize = 10000
	// MaxStatsdNames bounds the distinct statsd names the bridge registers
	// (each timer keeps a sample of its interval, about 500 bytes); lines for
	// further new names are counted in StatsdStats.NameLimit and skipped.
	MaxStatsdNames = 10000
	// MaxStatsdSetValues bounds the values all statsd sets hold together
	// per interval (a Set keeps a 64-bit hash per value, whatever the value's
	// size: a 60 KB member costs what "alice" does); further new values are
	// counted in StatsdStats.SetOverflow.
	MaxStatsdSetValues = 100_000
)

// ErrStatsd is wrapped by statsd line errors.
var ErrStatsd = errors.New("statsd")

// StatsdStats are the statsd bridge's cumulative counters.
type StatsdStats struct {
	Packets       uint64 // packets handled
	Lines         uint64 // non-empty lines seen
	Malformed     uint64 // lines skipped because they did not parse
	TypeConflicts uint64 // lines skipped because the name is registered as another metric type
	SetOverflow   uint64 // set values not added: a Set held MaxSetSize values, or all sets MaxStatsdSetValues (counted at emission)
	OutOfRange    uint64 // lines skipped because their value scaled by the sample rate, or a gauge after a delta, exceeds MaxStatsdValue
	NameLimit     uint64 // lines skipped because they would have registered a name beyond MaxStatsdNames
	ReadErrors    uint64 // socket read errors other than shutdown
}

// statsd metric types.
const (
	statsdCounter = iota + 1
	statsdTimer
	statsdHistogram
	statsdGauge
	statsdSet
)

// statsdTypes are the types' names on the wire, by type.
var statsdTypes = [...]string{statsdCounter: "c", statsdTimer: "ms", statsdHistogram: "h", statsdGauge: "g", statsdSet: "s"}

// statsdLine is one parsed statsd line. Byte slices alias the packet.
type statsdLine struct {
	name  []byte
	raw   []byte // the value as sent (set members)
	value float64
	typ   uint8
	rate  float64 // sample rate, 1 when absent
	delta bool    // gauge "+N"/"-N"
}

// parseStatsdLine parses "name:value|type[|@rate][|#tags]". Tags are
// accepted and ignored.
func parseStatsdLine(b []byte) (statsdLine, error) {
	l := statsdLine{rate: 1}
	name, rest, ok := bytes.Cut(b, []byte{':'})
	if !ok {
		return l, fmt.Errorf("%w: no ':' after the name", ErrStatsd)
	}
	l.name = name
	if len(l.name) == 0 {
		return l, fmt.Errorf("%w: empty name", ErrStatsd)
	}
	if len(l.name) > MaxStatsdNameLen {
		return l, fmt.Errorf("%w: name of %d bytes is longer than %d", ErrStatsd, len(l.name), MaxStatsdNameLen)
	}
	for _, c := range l.name {
		if c <= ' ' || c == 0x7f || c == '|' {
			return l, fmt.Errorf("%w: name has byte %q", ErrStatsd, c)
		}
	}
	if l.raw, rest, ok = bytes.Cut(rest, []byte{'|'}); !ok {
		return l, fmt.Errorf("%w: no '|' before the type", ErrStatsd)
	}
	typ, rest, _ := bytes.Cut(rest, []byte{'|'})
	if t := slices.Index(statsdTypes[:], string(typ)); t > 0 { // statsdTypes[0] is no type
		l.typ = uint8(t)
	} else {
		return l, fmt.Errorf("%w: unknown type %q", ErrStatsd, typ)
	}
	for len(rest) > 0 {
		var sec []byte
		sec, rest, _ = bytes.Cut(rest, []byte{'|'})
		switch {
		case len(sec) > 1 && sec[0] == '@':
			r, ok := parseNumber(sec[1:])
			if !ok || !(r > 0 && r <= 1) {
				return l, fmt.Errorf("%w: sample rate %q is not in (0, 1]", ErrStatsd, sec[1:])
			}
			l.rate = r
		case len(sec) > 0 && sec[0] == '#':
		default:
			return l, fmt.Errorf("%w: unknown section %q", ErrStatsd, sec)
		}
	}
	if len(l.raw) == 0 {
		return l, fmt.Errorf("%w: empty value", ErrStatsd)
	}
	if l.typ == statsdSet {
		return l, nil
	}
	l.delta = l.typ == statsdGauge && (l.raw[0] == '+' || l.raw[0] == '-')
	v, ok := parseNumber(l.raw)
	if !ok {
		return l, fmt.Errorf("%w: value %q is not a number", ErrStatsd, l.raw)
	}
	switch l.typ {
	case statsdCounter, statsdHistogram:
		if math.Abs(v) > MaxStatsdValue {
			return l, fmt.Errorf("%w: value %q is out of range", ErrStatsd, l.raw)
		}
	case statsdTimer:
		if v < 0 || v > float64(math.MaxInt64/int64(time.Millisecond)) {
			return l, fmt.Errorf("%w: timer value %q is out of range", ErrStatsd, l.raw)
		}
	}
	l.value = v
	return l, nil
}

// parseNumber parses a finite decimal number, the whole of b, as
// strconv.ParseFloat would but refusing its hexadecimal, "_", Inf and NaN
// forms (TestParseNumberMatchesParseFloat, FuzzParseStatsd): see
// decimal.Prefix, several times faster than strconv.ParseFloat on the common
// statsd shapes ("12", "-3", "0.25"; BenchmarkParseNumber).
func parseNumber(b []byte) (float64, bool) {
	v, n, ok := decimal.Prefix(b)
	return v, ok && n == len(b)
}

// bridged is the bridge's cached view of one registry metric.
type bridged struct {
	typ     uint8
	counter metrics.Counter
	frac    float64 // counter increments below 1 carried to the next line
	gauge   metrics.GaugeFloat64
	timer   metrics.Timer
	hist    metrics.Histogram
	hscale  float64
	set     *Set
}

// statsdBridge applies statsd lines to a registry. Safe for concurrent use.
type statsdBridge struct {
	reg metrics.Registry

	mu    sync.Mutex
	cache map[string]*bridged

	setValues atomic.Int64 // values held by the bridge's sets, for MaxStatsdSetValues

	packets, lines, malformed, conflicts, setOverflow, outOfRange, nameLimit, readErrors atomic.Uint64
}

func newStatsdBridge(r metrics.Registry) *statsdBridge {
	return &statsdBridge{reg: r, cache: make(map[string]*bridged)}
}

func (s *statsdBridge) snapshot() StatsdStats {
	return StatsdStats{
		Packets:       s.packets.Load(),
		Lines:         s.lines.Load(),
		Malformed:     s.malformed.Load(),
		TypeConflicts: s.conflicts.Load(),
		SetOverflow:   s.setOverflow.Load(),
		OutOfRange:    s.outOfRange.Load(),
		NameLimit:     s.nameLimit.Load(),
		ReadErrors:    s.readErrors.Load(),
	}
}

// handlePacket applies every line of p; bad lines are counted and skipped.
func (s *statsdBridge) handlePacket(p []byte) {
	s.packets.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	for line := range bytes.SplitSeq(p, []byte{'\n'}) {
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			continue
		}
		s.lines.Add(1)
		l, err := parseStatsdLine(line)
		if err != nil {
			s.malformed.Add(1)
			continue
		}
		s.apply(&l)
	}
}

func (s *statsdBridge) apply(l *statsdLine) {
	b := s.cache[string(l.name)]
	if b == nil {
		if len(s.cache) >= MaxStatsdNames {
			s.nameLimit.Add(1)
			return
		}
		if b = s.register(string(l.name), l.typ); b != nil {
			s.cache[string(l.name)] = b
		}
	}
	if b == nil || b.typ != l.typ { // the name holds a metric of another type
		s.conflicts.Add(1)
		return
	}
	switch l.typ {
	case statsdCounter:
		// A tiny rate scales any value past what a counter holds (1/5e-324
		// is +Inf, and the carried fraction would become NaN for good).
		scaled := l.value / l.rate
		if !(math.Abs(scaled) <= MaxStatsdValue) {
			s.outOfRange.Add(1)
			return
		}
		x := scaled + b.frac
		whole := math.Trunc(x)
		b.frac = x - whole
		if whole != 0 {
			b.counter.Inc(int64(whole))
		}
	case statsdTimer:
		b.timer.Update(time.Duration(l.value * float64(time.Millisecond)))
	case statsdHistogram:
		b.hist.Update(int64(math.Round(l.value * b.hscale)))
	case statsdGauge:
		v := l.value
		if l.delta {
			v += b.gauge.Value()
		}
		if !(math.Abs(v) <= MaxStatsdValue) { // also after a delta
			s.outOfRange.Add(1)
			return
		}
		b.gauge.Update(v)
	case statsdSet:
		b.set.addBytes(l.raw) // refusals are counted by the Set, reported at emission
	}
}

// register finds or creates the registry metric for a statsd name; nil when
// the name holds a metric of another type.
func (s *statsdBridge) register(name string, typ uint8) *bridged {
	b := &bridged{typ: typ}
	var ok bool
	switch typ {
	case statsdCounter:
		b.counter, ok = s.reg.GetOrRegister(name, metrics.NewCounter).(metrics.Counter)
	case statsdTimer:
		b.timer, ok = s.reg.GetOrRegister(name, func() metrics.Timer { return NewTimer() }).(metrics.Timer)
	case statsdHistogram:
		b.hist, ok = s.reg.GetOrRegister(name, func() metrics.Histogram { return newScaledHistogram(statsdHistScale) }).(metrics.Histogram)
		if ok {
			b.hscale = 1
			if smp, isOurs := b.hist.Sample().(*Sample); isOurs {
				b.hscale = smp.scale
			}
		}
	case statsdGauge:
		b.gauge, ok = s.reg.GetOrRegister(name, metrics.NewGaugeFloat64).(metrics.GaugeFloat64)
	case statsdSet:
		b.set, ok = s.reg.GetOrRegister(name, NewSet).(*Set)
		if ok {
			b.set.share(&s.setValues)
		}
	}
	if !ok {
		return nil
	}
	return b
}

// statsdHistScale keeps three decimals of "|h" values in int64 storage.
const statsdHistScale = 1000

// serve reads packets until ctx ends, then reads for StatsdDrainTimeout
// more to take what is already queued.
func (s *statsdBridge) serve(ctx context.Context, conn net.PacketConn, log *slog.Logger) {
	buf := make([]byte, MaxStatsdPacket)
	logged := false
	context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now().Add(StatsdDrainTimeout)) })
	for {
		n, _, err := conn.ReadFrom(buf)
		if n > 0 {
			s.handlePacket(buf[:n])
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
				return
			}
			s.readErrors.Add(1)
			if !logged { // once: a broken socket would flood the log
				log.Warn("emitter: statsd read failed", "err", err)
				logged = true
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// Set counts the distinct values it receives per emission interval; the
// Emitter prints count#name=N and starts a new interval. It is what statsd
// "|s" lines feed, and it satisfies metrics.Gauge so that a go-metrics
// registry accepts it (Value returns the distinct count so far, Update adds
// the decimal form of its argument). It keeps a 64-bit hash of each value,
// not the value, so a value's size costs nothing (two distinct values count
// as one only on a hash collision, about 1 in 10^11 at MaxSetSize values),
// and at most MaxSetSize values per interval. Safe for concurrent use.
type Set struct {
	mu       sync.Mutex
	m        map[uint64]struct{}
	overflow uint64
	shared   *atomic.Int64 // values held by every Set of a statsd bridge, or nil
}

var _ metrics.Gauge = (*Set)(nil)

// setSeed hashes Set values; one per process, so Sets agree with each other.
var setSeed = maphash.MakeSeed()

// NewSet returns an empty Set.
func NewSet() *Set { return &Set{m: make(map[uint64]struct{})} }

// share makes s count its values against a budget shared with other Sets
// (MaxStatsdSetValues).
func (s *Set) share(total *atomic.Int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shared == nil {
		s.shared = total
		total.Add(int64(len(s.m)))
	}
}

// Add adds v to the current interval's values.
func (s *Set) Add(v string) { s.add(maphash.String(setSeed, v)) }

func (s *Set) addBytes(v []byte) { s.add(maphash.Bytes(setSeed, v)) }

func (s *Set) add(h uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[h]; ok {
		return
	}
	if len(s.m) >= MaxSetSize {
		s.overflow++
		return
	}
	if s.shared != nil && s.shared.Add(1) > MaxStatsdSetValues {
		s.shared.Add(-1)
		s.overflow++
		return
	}
	s.m[h] = struct{}{}
}

// Update adds the decimal form of v.
func (s *Set) Update(v int64) { s.addBytes(strconv.AppendInt(nil, v, 10)) }

// Value returns the number of distinct values in the current interval.
func (s *Set) Value() int64 { return locked(&s.mu, func() int64 { return int64(len(s.m)) }) }

// Snapshot returns the current distinct count as a read-only gauge.
func (s *Set) Snapshot() metrics.Gauge { return metrics.GaugeSnapshot(s.Value()) }

// drain returns the distinct count and the values refused since the last
// drain, and starts a new interval.
func (s *Set) drain() (n int64, overflow uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, overflow = int64(len(s.m)), s.overflow
	if s.shared != nil {
		s.shared.Add(-n)
	}
	clear(s.m)
	s.overflow = 0
	return n, overflow
}
