package librato

import (
	"hash/maphash"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/jsonappend"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/outlet"
)

// Batch limits of the two APIs.
const (
	// MaxMetricsPerPost is the documented recommendation for /v1/metrics,
	// which the encoder treats as a hard limit.
	MaxMetricsPerPost = 300
	// MaxMeasurementsPerPost is the limit for /v1/measurements.
	MaxMeasurementsPerPost = 1000
	// maxAbsValue is the magnitude from which Librato refuses a whole request
	// ("base-10 exponent larger than 126").
	maxAbsValue = 1e126
)

// The gauges derived from a measure# series, besides the complex gauge itself.
var percentileSuffixes = [3]string{".median", ".perc95", ".perc99"}

// encoder turns buckets into request bodies for one API. It appends JSON by
// hand into a reused scratch buffer (see BenchmarkEncode* for the comparison
// with encoding/json) and copies each finished body out exactly once. Not
// safe for concurrent use.
type encoder struct {
	tagged  bool
	prefix  func(app string) string // METRICS_PREFIX for a series' app (outlet.PrefixCache)
	tags    []byte                  // configured tags, pre-encoded as `,"k":"v"` pairs, sorted
	maxN    int
	scratch []byte
	seed    maphash.Seed
	seen    map[uint64]struct{} // identities sent in the current bucket
}

// encodeStats counts what one encode call did.
type encodeStats struct {
	series, measurements, batches int
	skipped                       int // series of which nothing could be sent
	fieldsDropped                 int // optional fields and percentile gauges left out: value out of range
	collisions                    int // measurements left out: same name and source as one sent before in the bucket
}

func newEncoder(tagged bool, prefix string, tags map[string]string) *encoder {
	e := &encoder{tagged: tagged, prefix: outlet.PrefixCache(prefix, sanitizePrefix), maxN: MaxMetricsPerPost, seed: maphash.MakeSeed(), seen: map[uint64]struct{}{}}
	if tagged {
		e.maxN = MaxMeasurementsPerPost
		for _, k := range slices.Sorted(maps.Keys(tags)) {
			e.tags = append(e.tags, ',')
			e.tags = appendDynoTag(e.tags, k) // same rules as values: lowercase, escaped
			e.tags = append(e.tags, ':')
			e.tags = appendDynoTag(e.tags, tags[k])
		}
	}
	return e
}

// encode encodes b and calls emit once per finished request body with the
// number of measurements it holds. body is freshly allocated and owned by
// emit.
//
// Nothing good is lost to one bad value: a field Librato would refuse (NaN,
// ±Inf, magnitude ≥ 1e126) is left out when it is optional (min, max,
// sum_squares, last; counted in fieldsDropped), a percentile gauge with such a
// value is left out alone (fieldsDropped), and only a series whose required
// value is out of range, or whose name is empty, is skipped (skipped).
// Sanitizing can map two series onto one Librato identity (é, ü and _ all
// become _; "all" and "ALL" both become the source "_all"): the first in the
// bucket is sent, the others are counted in collisions, so a request never
// holds two gauges with the same name, source and time.
func (e *encoder) encode(b *aggregate.Bucket, emit func(body []byte, n int)) encodeStats {
	var st encodeStats
	buf := e.scratch[:0]
	clear(e.seen)
	n := 0
	start := b.Start.Unix()
	period := int64(b.Period.Seconds())
	// Every request body of the bucket starts the same way.
	body := `{"measure_time":` + strconv.FormatInt(start, 10) + `,"gauges":[`
	if e.tagged {
		body = `{"time":` + strconv.FormatInt(start, 10)
		if period > 0 {
			body += `,"period":` + strconv.FormatInt(period, 10)
		}
		body += `,"measurements":[`
	}
	open := func() {
		buf = append(buf[:0], body...)
		n = 0
	}
	flush := func() {
		if n == 0 {
			return
		}
		buf = append(buf, "]}"...)
		emit(slices.Clone(buf), n)
		st.batches++
		st.measurements += n
	}
	sent, collided := 0, false // per series
	// head starts one measurement object of s (flushing first when the
	// batch is full) with its name and identity. It returns false, leaving
	// buf as it was, when the bucket already holds a measurement with that
	// identity.
	head := func(s *aggregate.Series, suffix string) bool {
		if n == e.maxN {
			flush()
			open()
		}
		mark := len(buf)
		if n > 0 {
			buf = append(buf, ',')
		}
		from := len(buf)
		var id int
		buf, id = e.appendHead(buf, s, suffix, period)
		h := maphash.Bytes(e.seed, buf[from:id])
		if _, dup := e.seen[h]; dup {
			buf = buf[:mark]
			st.collisions++
			collided = true
			return false
		}
		e.seen[h] = struct{}{}
		n++
		return true
	}
	value := func(s *aggregate.Series, suffix string, v float64) {
		if !finite(v) {
			if suffix != "" {
				st.fieldsDropped++
			}
			return
		}
		if head(s, suffix) {
			buf = appendField(buf, "value", v)
			buf = append(buf, '}')
			sent++
		}
	}
	open()
	for i := range b.Series {
		s := &b.Series[i]
		if s.Name == "" {
			st.skipped++
			continue
		}
		sent, collided = 0, false
		switch s.Kind {
		case metric.Counter:
			value(s, "", s.Sum)
		case metric.Sample:
			value(s, "", s.Last)
		case metric.Measure:
			// count and sum are required; the rest is optional.
			if s.Count > 0 && finite(s.Sum) && head(s, "") {
				buf = append(buf, `,"count":`...)
				buf = strconv.AppendInt(buf, s.Count, 10)
				buf = appendField(buf, "sum", s.Sum)
				buf = e.appendOptional(buf, "min", s.Min, &st)
				buf = e.appendOptional(buf, "max", s.Max, &st)
				if e.tagged {
					buf = e.appendOptional(buf, "last", s.Last, &st)
				} else {
					buf = e.appendOptional(buf, "sum_squares", s.SumSquares, &st)
				}
				buf = append(buf, '}')
				sent++
			}
			for j, v := range [3]float64{s.Median, s.P95, s.P99} {
				value(s, percentileSuffixes[j], v)
			}
		}
		switch {
		case sent > 0:
			st.series++
		case !collided:
			st.skipped++
		}
	}
	flush()
	e.scratch = buf
	return st
}

// appendOptional appends `,"key":v` when Librato can carry v, and counts it
// in st.fieldsDropped when it cannot.
func (e *encoder) appendOptional(buf []byte, key string, v float64, st *encodeStats) []byte {
	if !finite(v) {
		st.fieldsDropped++
		return buf
	}
	return appendField(buf, key, v)
}

// appendHead appends `{"name":…` and the fields every measurement of s shares:
// source or tags, period (legacy API, per gauge) and units. It also returns
// the end of the measurement's identity in buf: the name and the source or
// tags, which Librato keys its data by.
func (e *encoder) appendHead(buf []byte, s *aggregate.Series, suffix string, period int64) ([]byte, int) {
	buf = append(buf, `{"name":`...)
	buf = appendMetricName(buf, e.prefix(s.App), s.Name, suffix)
	if e.tagged {
		buf = append(buf, `,"tags":{`...)
		switch {
		case s.Source != "":
			buf = append(buf, `"dyno":`...)
			buf = appendDynoTag(buf, s.Source)
			buf = append(buf, e.tags...)
		case len(e.tags) > 0:
			buf = append(buf, e.tags[1:]...) // drop the leading comma
		default:
			buf = append(buf, `"dyno":"`+NoSourceDyno+`"`...)
		}
		if s.App != "" { // multi-app mode; every case above wrote a tag
			buf = append(buf, `,"app":`...)
			buf = appendDynoTag(buf, s.App)
		}
		buf = append(buf, '}')
	} else if s.Source != "" {
		buf = append(buf, `,"source":`...)
		buf = appendSource(buf, s.Source)
	}
	id := len(buf)
	if !e.tagged && period > 0 {
		buf = append(buf, `,"period":`...)
		buf = strconv.AppendInt(buf, period, 10)
	}
	if s.Unit != "" {
		buf = append(buf, `,"attributes":{"display_units_short":`...)
		buf = jsonappend.String(buf, s.Unit)
		buf = append(buf, '}')
	}
	return buf, id
}

func finite(v float64) bool { return math.Abs(v) < maxAbsValue } // false for NaN and ±Inf too

// appendField appends `,"key":value`.
func appendField(buf []byte, key string, v float64) []byte {
	buf = append(buf, ',', '"')
	buf = append(buf, key...)
	buf = append(buf, '"', ':')
	return jsonappend.Float(buf, v)
}

// sanitizePrefix applies the metric-name rule to a configured prefix and
// removes leading and trailing dots, so "a.b." does not yield "a.b..x".
func sanitizePrefix(p string) string {
	return strings.Trim(SanitizeName(p), ".")
}
