package l2met

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/dynometrics/dynometrics/internal/decimal"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// Bounds of the Parser. Each one that is hit is counted in Stats.
const (
	// MaxInterned is the number of distinct strings (names, sources and units
	// together) the Parser keeps in its interning table. Past it, a string not
	// yet in the table is allocated for every measurement that uses it (parsing
	// still works, it just allocates) and Stats.InternOverflow counts it.
	MaxInterned = 10000

	// MaxNameLen is the longest metric name accepted; longer names are rejected.
	MaxNameLen = 200

	// MaxSourceLen is the longest source accepted; a longer source= value is
	// rejected and the line falls back to the next source rule.
	MaxSourceLen = 200

	// MaxUnitLen is the longest unit suffix accepted; longer units are rejected.
	MaxUnitLen = 16

	// MaxPerLine is the most measurements one line may yield; further metric
	// pairs of the line are rejected.
	MaxPerLine = 256

	// maxQuoted is how much of a rejected value a ParseError quotes.
	maxQuoted = 32
)

// Metric names the Parser produces itself (see the package documentation).
const (
	RouterConnect  = "router.connect"          // metric.Measure, ms
	RouterService  = "router.service"          // metric.Measure, ms
	RouterBytes    = "router.bytes"            // metric.Measure, bytes
	RouterHTTP11   = "router.protocol.http1.1" // metric.Counter: Router 2.0 requests over HTTP/1.1
	RouterHTTP20   = "router.protocol.http2.0" // metric.Counter: Router 2.0 requests over HTTP/2
	RouterSource   = "router"                  // source of router lines without a dyno
	LogplexDropped = "logplex.dropped"         // metric.Counter: messages Logplex dropped (L10)
)

var routerProtocols = map[string]string{"http1.1": RouterHTTP11, "http2.0": RouterHTTP20}

var routerStatus = [6]string{"", "router.status.1xx", "router.status.2xx", "router.status.3xx", "router.status.4xx", "router.status.5xx"}

// Line is one log message with the header fields parsing needs. Byte slices are
// only read during Parse.
type Line struct {
	Time    time.Time // the syslog timestamp; the caller puts the arrival time here when the line had none
	AppName []byte    // "app", "heroku", or empty for a bare line
	ProcID  []byte    // "web.1", "router", "heroku-postgres", "logplex", or empty
	Msg     []byte
}

// ParseError describes the pairs of one line that were rejected; the good pairs
// of the same line are still returned.
type ParseError struct {
	Rejected int    // number of rejected pairs or values in the line
	Reason   string // the first rejection, e.g. `count#req: value "abc" is not a number`
}

// Error returns e.g. `l2met: 2 rejected, first: count#req: value "abc" is not a number`.
func (e *ParseError) Error() string {
	return fmt.Sprintf("l2met: %d rejected, first: %s", e.Rejected, e.Reason)
}

// Stats are the cumulative counters of a Parser.
type Stats struct {
	Lines          uint64 // lines given to Parse
	Measurements   uint64 // measurements appended
	Rejected       uint64 // pairs or values rejected (bad or non-finite number, bound exceeded, …)
	TooLong        uint64 // of Rejected: names, units or sources over their Max…Len
	TooMany        uint64 // of Rejected: metric pairs past MaxPerLine
	InternOverflow uint64 // strings allocated because the table held MaxInterned strings
	Interned       uint64 // strings in the interning table now
}

type counters struct {
	lines, measurements, rejected, tooLong, tooMany, overflow, interned atomic.Uint64
}

// Parser turns log lines into measurements. It keeps an interning table so
// that steady-state parsing allocates nothing. Not safe for concurrent use: use
// one Parser per goroutine. Stats may be called from any goroutine.
type Parser struct {
	intern  map[string]string
	cache   [internCacheSize]cacheEntry // direct-mapped cache in front of intern
	scratch []byte
	stats   counters
}

// NewParser returns a ready Parser.
func NewParser() *Parser {
	return &Parser{intern: make(map[string]string, 256), scratch: make([]byte, 0, 64)}
}

// Stats returns the cumulative counters. Safe for concurrent use.
func (p *Parser) Stats() Stats {
	c := &p.stats
	return Stats{
		Lines: c.lines.Load(), Measurements: c.measurements.Load(), Rejected: c.rejected.Load(),
		TooLong: c.tooLong.Load(), TooMany: c.tooMany.Load(), InternOverflow: c.overflow.Load(),
		Interned: c.interned.Load(),
	}
}

// internCacheBits sizes the Parser's direct-mapped cache of interned strings
// (1 << internCacheBits entries, 32 bytes each). A hit costs a cheap hash and
// two word comparisons instead of a map lookup (about 13 ns for a 20-byte
// name, a fifth of BenchmarkParse's time went to map lookups); a miss falls
// back to the map and refills the slot.
const internCacheBits = 9

const internCacheSize = 1 << internCacheBits

// cacheEntry is one slot of Parser.cache: an interned string and its
// cacheWords, so that a hit on a string of up to 16 bytes is decided by
// comparing the words the hash is made of, without calling memequal.
type cacheEntry struct {
	s      string
	lo, hi uint64
}

// cacheWords packs b (len(b) > 0) into two words that, with len(b), identify
// it when len(b) <= 16: its first and last 8 bytes, or, when it is shorter
// than 8 bytes, all its bytes in lo (overlapping loads cover every byte).
func cacheWords(b []byte) (lo, hi uint64) {
	switch n := len(b); {
	case n >= 8:
		return binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[n-8:])
	case n >= 4:
		return uint64(binary.LittleEndian.Uint32(b)) | uint64(binary.LittleEndian.Uint32(b[n-4:]))<<32, 0
	default:
		return uint64(b[0]) | uint64(b[n>>1])<<8 | uint64(b[n-1])<<16, 0
	}
}

// cacheSlot hashes the cacheWords of a string of length n to a slot of
// Parser.cache.
func cacheSlot(lo, hi uint64, n int) uint {
	h := (lo ^ bits.RotateLeft64(hi, 29) ^ uint64(n)) * 0x9E3779B97F4A7C15
	return uint(h >> (64 - internCacheBits))
}

// str returns b as a string, from the interning table when it can.
func (p *Parser) str(b []byte) string {
	n := len(b)
	if n == 0 {
		return ""
	}
	lo, hi := cacheWords(b)
	e := &p.cache[cacheSlot(lo, hi, n)]
	if e.lo == lo && e.hi == hi && len(e.s) == n && (n <= 16 || e.s[8:n-8] == string(b[8:n-8])) {
		return e.s
	}
	if s, ok := p.intern[string(b)]; ok {
		*e = cacheEntry{s, lo, hi}
		return s
	}
	s := string(b)
	if len(p.intern) >= MaxInterned {
		p.stats.overflow.Add(1)
		return s
	}
	p.intern[s] = s
	*e = cacheEntry{s, lo, hi}
	p.stats.interned.Add(1)
	return s
}

// source returns b interned, or "" and a rejection when it is longer than
// MaxSourceLen. field names b in the rejection.
func (p *Parser) source(r *rejects, field string, b []byte) string {
	if len(b) > MaxSourceLen {
		p.reject(r, &p.stats.tooLong, []byte(field), nil, "longer than "+strconv.Itoa(MaxSourceLen)+" bytes")
		return ""
	}
	return p.str(b)
}

// strPrefixed returns prefix+b, interned.
func (p *Parser) strPrefixed(prefix string, b []byte) string {
	p.scratch = append(append(p.scratch[:0], prefix...), b...)
	return p.str(p.scratch)
}

// rejects collects the rejections of one line. The reason is only formatted
// for the first one.
type rejects struct {
	n      int
	reason string
}

// reject records one rejected pair: `key: value "val" what`, or `key: what`
// when val is nil. Key and value are cut to maxQuoted bytes.
func (p *Parser) reject(r *rejects, counter *atomic.Uint64, key, val []byte, what string) {
	p.stats.rejected.Add(1)
	if counter != nil {
		counter.Add(1)
	}
	if r.n == 0 {
		key = key[:min(len(key), maxQuoted)]
		r.reason = string(key) + ": " + what
		if val != nil {
			val = val[:min(len(val), maxQuoted)]
			r.reason = string(key) + ": value " + strconv.Quote(string(val)) + " " + what
		}
	}
	r.n++
}

// IsRouterLine reports whether msg is a Heroku router line by its content
// alone, for inputs that carry no syslog APP-NAME and PROCID (a Fir telemetry
// drain's log records): it starts with at=info, at=warning or at=error and
// has the router's method=, status=, connect= and service= fields (empty
// values, as on H14, included). An app's own access log lines rarely carry
// connect= and service= beside at=.
func IsRouterLine(msg []byte) bool {
	switch {
	case bytes.HasPrefix(msg, []byte("at=info ")), bytes.HasPrefix(msg, []byte("at=error ")),
		bytes.HasPrefix(msg, []byte("at=warning ")):
	default:
		return false
	}
	return bytes.Contains(msg, []byte(" method=")) && bytes.Contains(msg, []byte(" status=")) &&
		bytes.Contains(msg, []byte(" connect=")) && bytes.Contains(msg, []byte(" service="))
}

// Parse appends the measurements found in line to dst and returns dst. A line
// with no metric in it returns dst unchanged and a nil error. When some pairs
// are rejected, the good ones are still appended and err is a *ParseError.
func (p *Parser) Parse(dst []metric.Measurement, line Line) ([]metric.Measurement, error) {
	p.stats.lines.Add(1)
	start := len(dst)
	var r rejects
	switch {
	case string(line.AppName) == "heroku" && string(line.ProcID) == "router":
		dst = p.router(dst, line, &r)
	case string(line.AppName) == "heroku" && bytes.HasPrefix(line.Msg, []byte("Error ")):
		dst = p.herokuError(dst, line)
	default:
		dst = p.generic(dst, line, &r)
	}
	p.stats.measurements.Add(uint64(len(dst) - start))
	if r.n > 0 {
		return dst, &ParseError{Rejected: r.n, Reason: r.reason}
	}
	return dst, nil
}

// pairs iterates over the logfmt pairs of a message.
type pairs struct {
	b []byte
	i int
}

// next returns the next key, its value and whether it had '='. Pairs are
// separated by spaces. Quoted values are returned without the quotes (escapes
// are left as they are). A token that starts with a quote is skipped whole, so
// quoted free text cannot be taken for pairs.
func (it *pairs) next() (key, val []byte, hasVal, ok bool) {
	b := it.b
	i := it.i
	for {
		for i < len(b) && b[i] == ' ' {
			i++
		}
		if i >= len(b) {
			it.i = i
			return nil, nil, false, false
		}
		if b[i] != '"' {
			break
		}
		i = skipQuoted(b, i)
	}
	tok, _, _ := bytes.Cut(b[i:], []byte{' '})
	eq := bytes.IndexByte(tok, '=')
	if eq < 0 {
		it.i = i + len(tok)
		return tok, nil, false, true
	}
	key = tok[:eq]
	vs := i + eq + 1
	if vs < len(b) && b[vs] == '"' {
		e := skipQuoted(b, vs)
		ve := e
		if ve > vs+1 && b[ve-1] == '"' {
			ve--
		}
		it.i = e
		return key, b[vs+1 : ve], true, true
	}
	it.i = i + len(tok)
	return key, tok[eq+1:], true, true
}

// skipQuoted returns the index after the quoted string starting at b[i] ('"'),
// honouring backslash escapes; the end of b if it is not closed.
func skipQuoted(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

func (p *Parser) generic(dst []metric.Measurement, line Line, r *rejects) []metric.Measurement {
	start := len(dst)
	var source, oldName, oldVal, oldUnits []byte
	var hasOldVal bool
	if mayBePlain(line.Msg) {
		return dst
	}
	it := pairs{b: line.Msg}
	for {
		key, val, hasVal, ok := it.next()
		if !ok {
			break
		}
		if len(key) < 3 {
			continue
		}
		var kind metric.Kind
		var name []byte
		switch key[0] {
		case 'c':
			if name, ok = bytes.CutPrefix(key, []byte("count#")); !ok {
				continue
			}
			kind = metric.Counter
			if !hasVal {
				val, hasVal = one, true
			}
		case 's':
			if name, ok = bytes.CutPrefix(key, []byte("sample#")); !ok {
				if string(key) == "source" && hasVal {
					source = val
				}
				continue
			}
			kind = metric.Sample
		case 'm':
			if name, ok = bytes.CutPrefix(key, []byte("measure#")); !ok {
				if name, ok = bytes.CutPrefix(key, []byte("measure.")); !ok {
					if string(key) == "measure" {
						oldName = val
					}
					continue
				}
			}
			kind = metric.Measure
		default:
			switch string(key) {
			case "val":
				oldVal, hasOldVal = val, hasVal
			case "units":
				oldUnits = val
			}
			continue
		}
		// Fast path for a valid pair; metric re-checks in order and says why
		// when something is wrong.
		if len(dst)-start < MaxPerLine && len(name) > 0 && len(name) <= MaxNameLen && hasVal && len(val) > 0 {
			if v, u, why := parseValue(val); why == "" && len(u) <= MaxUnitLen {
				dst = append(dst, metric.Measurement{Name: p.str(name), Time: line.Time, Kind: kind, Value: v, Unit: p.unit(u)})
				continue
			}
		}
		dst = p.metric(dst, line.Time, kind, key, name, val, hasVal, nil, start, r)
	}
	if len(oldName) > 0 && hasOldVal {
		// l2met's old form and the labs runtime metrics: measure=memory_rss
		// val=21.22 units=MB. It says measure, and the tools of its time
		// kept count, sum, min, max and percentiles of it (memory_rss.median).
		dst = p.metric(dst, line.Time, metric.Measure, []byte("measure"), oldName, oldVal, true, oldUnits, start, r)
	}
	if len(dst) == start {
		return dst
	}
	var src string
	if len(source) > 0 {
		src = p.source(r, "source", dynoFromOldSource(source))
	}
	if src == "" {
		src = p.source(r, "PROCID", line.ProcID)
	}
	for i := start; i < len(dst); i++ {
		dst[i].Source = src
	}
	return dst
}

var one = []byte("1")

// mayBePlain reports whether msg cannot hold a metric pair, tested only when
// it does not start like one: a metric needs "#" (count#, sample#, measure#)
// or "measure" (measure.x=, measure=x).
func mayBePlain(msg []byte) bool {
	if len(msg) == 0 {
		return true
	}
	switch msg[0] {
	case 'c', 's', 'm':
		return false
	}
	return bytes.IndexByte(msg, '#') < 0 && !bytes.Contains(msg, []byte("measure"))
}

// metric validates one metric pair and appends it. unit, when not nil,
// overrides the unit parsed from val (and must be valid too).
func (p *Parser) metric(dst []metric.Measurement, t time.Time, kind metric.Kind, key, name, val []byte, hasVal bool, unit []byte, start int, r *rejects) []metric.Measurement {
	switch {
	case len(dst)-start >= MaxPerLine:
		p.reject(r, &p.stats.tooMany, key, nil, "more than "+strconv.Itoa(MaxPerLine)+" metrics in the line")
		return dst
	case len(name) == 0:
		p.reject(r, nil, key, nil, "empty name")
		return dst
	case len(name) > MaxNameLen:
		p.reject(r, &p.stats.tooLong, key, nil, "name longer than "+strconv.Itoa(MaxNameLen)+" bytes")
		return dst
	case !hasVal || len(val) == 0:
		p.reject(r, nil, key, nil, "no value")
		return dst
	}
	v, u, why := parseValue(val)
	if why != "" {
		p.reject(r, nil, key, val, why)
		return dst
	}
	if unit != nil {
		if !validUnit(unit) {
			p.reject(r, nil, []byte("units"), unit, "is not letters or %")
			return dst
		}
		u = unit
	}
	if len(u) > MaxUnitLen {
		p.reject(r, &p.stats.tooLong, key, nil, "unit longer than "+strconv.Itoa(MaxUnitLen)+" bytes")
		return dst
	}
	return append(dst, metric.Measurement{Name: p.str(name), Time: t, Kind: kind, Value: v, Unit: p.unit(u)})
}

// unit returns u as a string, skipping the interning table for common units.
func (p *Parser) unit(u []byte) string {
	for _, c := range commonUnits {
		if string(u) == c {
			return c
		}
	}
	return p.str(u)
}

var commonUnits = [...]string{"", "ms", "MB", "kB", "bytes", "pages", "%", "s"}

// parseValue splits `21.22MB` into 21.22 and "MB". The number is
// [+-]digits[.digits][(e|E)[+-]digits] (digits on at least one side of the
// point, see decimal.Prefix); the unit is the rest and must be letters or
// '%'. NaN, Inf, overflowing and malformed values are rejected with a reason.
func parseValue(b []byte) (float64, []byte, string) {
	v, n, ok := decimal.Prefix(b)
	switch {
	case n == 0:
		return 0, nil, "is not a number"
	case !validUnit(b[n:]):
		return 0, nil, "has a unit that is not letters or %"
	case !ok:
		return 0, nil, "is out of range"
	}
	return v, b[n:], ""
}

func validUnit(u []byte) bool {
	for _, c := range u {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '%') {
			return false
		}
	}
	return true
}

// dynoFromOldSource reduces the source of the old labs runtime metrics,
// `heroku.2808254.web.1.d97d0ea7-cf3d-411b-b453-d2943a50b456`, to the dyno
// name `web.1`. Other sources are returned unchanged.
func dynoFromOldSource(b []byte) []byte {
	r, ok := bytes.CutPrefix(b, []byte("heroku."))
	if !ok {
		return b
	}
	id, r, ok := bytes.Cut(r, []byte{'.'}) // the app's number
	if !ok || len(id) == 0 || bytes.ContainsFunc(id, func(c rune) bool { return c < '0' || c > '9' }) {
		return b
	}
	if j := bytes.LastIndexByte(r, '.'); j > 0 && isHexID(r[j+1:]) {
		r = r[:j]
	}
	if len(r) == 0 {
		return b
	}
	return r
}

// isHexID reports whether b looks like a dyno UUID: 8 or more hex digits and dashes.
func isHexID(b []byte) bool {
	return len(b) >= 8 && !bytes.ContainsFunc(b, func(c rune) bool {
		return !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '-')
	})
}

// router parses a Heroku router line.
func (p *Parser) router(dst []metric.Measurement, line Line, r *rejects) []metric.Measurement {
	start := len(dst)
	var dyno []byte
	it := pairs{b: line.Msg}
	for {
		key, val, _, ok := it.next()
		if !ok {
			break
		}
		if len(val) == 0 {
			continue // H14 and friends: `dyno= connect= service= bytes=`
		}
		if len(dst)-start >= MaxPerLine && string(key) != "dyno" {
			p.reject(r, &p.stats.tooMany, key, nil, "more than "+strconv.Itoa(MaxPerLine)+" metrics in the line")
			continue
		}
		switch string(key) {
		case "dyno":
			dyno = val
		case "connect", "service", "bytes":
			name, unit, why := RouterConnect, "ms", "has a unit other than ms" // bytes: a bare number
			switch key[0] {
			case 's':
				name = RouterService
			case 'b':
				name, unit, why = RouterBytes, "bytes", "has a unit"
			}
			v, u, bad := parseValue(val)
			if bad == "" && (len(u) == 0 || unit == "ms" && string(u) == "ms") {
				dst = append(dst, metric.Measurement{Name: name, Time: line.Time, Kind: metric.Measure, Value: v, Unit: unit})
				continue
			}
			p.reject(r, nil, key, val, cmp.Or(bad, why))
		case "status":
			if len(val) != 3 || val[0] < '1' || val[0] > '5' || val[1] < '0' || val[1] > '9' || val[2] < '0' || val[2] > '9' {
				p.reject(r, nil, key, val, "is not an HTTP status")
				continue
			}
			dst = append(dst, metric.Measurement{Name: routerStatus[val[0]-'0'], Time: line.Time, Kind: metric.Counter, Value: 1})
		case "protocol":
			// Router 2.0: the HTTP version of the client's request. The
			// legacy router's protocol=https|http (the scheme) counts nothing.
			if name := routerProtocols[string(val)]; name != "" {
				dst = append(dst, metric.Measurement{Name: name, Time: line.Time, Kind: metric.Counter, Value: 1})
			}
		case "code":
			if !isErrorCode(val) {
				p.reject(r, nil, key, val, "is not an error code")
				continue
			}
			dst = append(dst, metric.Measurement{Name: p.strPrefixed("router.error.", val), Time: line.Time, Kind: metric.Counter, Value: 1})
		}
	}
	src := cmp.Or(p.source(r, "dyno", dyno), RouterSource)
	for i := start; i < len(dst); i++ {
		dst[i].Source = src
	}
	return dst
}

// isErrorCode reports whether b is a Heroku error code: an upper-case letter
// and 1-4 digits (H12, R14, L10).
func isErrorCode(b []byte) bool {
	return len(b) >= 2 && len(b) <= 5 && b[0] >= 'A' && b[0] <= 'Z' &&
		!bytes.ContainsFunc(b[1:], func(c rune) bool { return c < '0' || c > '9' })
}

// herokuError parses `Error R14 (Memory quota exceeded)` from a dyno and
// `Error L10 (output buffer overflow): 500 messages dropped since …` from
// Logplex. Other lines are ignored.
func (p *Parser) herokuError(dst []metric.Measurement, line Line) []metric.Measurement {
	msg := line.Msg[len("Error "):]
	code, _, _ := bytes.Cut(msg, []byte{' '})
	if !isErrorCode(code) {
		return dst
	}
	if string(line.ProcID) == "logplex" {
		if string(code) != "L10" {
			return dst
		}
		// Error L10 (output buffer overflow): 500 messages dropped since …
		_, rest, ok := bytes.Cut(msg, []byte("): "))
		if !ok {
			return dst
		}
		n, j := uint64(0), 0
		for ; j < len(rest) && j < 18 && rest[j] >= '0' && rest[j] <= '9'; j++ {
			n = n*10 + uint64(rest[j]-'0')
		}
		if j == 0 || !bytes.HasPrefix(rest[j:], []byte(" messages dropped")) {
			return dst
		}
		return append(dst, metric.Measurement{Name: LogplexDropped, Time: line.Time, Kind: metric.Counter, Value: float64(n)})
	}
	if len(line.ProcID) == 0 || len(line.ProcID) > MaxSourceLen {
		return dst // not a dyno
	}
	return append(dst, metric.Measurement{Name: p.strPrefixed("dyno.error.", code), Source: p.str(line.ProcID), Time: line.Time, Kind: metric.Counter, Value: 1})
}
