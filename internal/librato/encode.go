package librato

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
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
	prefix  string
	tags    []byte // configured tags, pre-encoded as `,"k":"v"` pairs, sorted
	maxN    int
	scratch []byte
}

// encodeStats counts what one encode call did.
type encodeStats struct {
	series, measurements, batches, skipped int
}

func newEncoder(tagged bool, prefix string, tags map[string]string) *encoder {
	e := &encoder{tagged: tagged, prefix: prefix, maxN: MaxMetricsPerPost}
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
// emit. Series with an empty name or a value Librato would refuse (NaN, ±Inf,
// magnitude ≥ 1e126) are skipped and counted.
func (e *encoder) encode(b *aggregate.Bucket, emit func(body []byte, n int)) encodeStats {
	var st encodeStats
	buf := e.scratch[:0]
	n := 0
	start := b.Start.Unix()
	period := int64(b.Period.Seconds())
	open := func() {
		buf = buf[:0]
		if e.tagged {
			buf = append(buf, `{"time":`...)
			buf = strconv.AppendInt(buf, start, 10)
			if period > 0 {
				buf = append(buf, `,"period":`...)
				buf = strconv.AppendInt(buf, period, 10)
			}
			buf = append(buf, `,"measurements":[`...)
		} else {
			buf = append(buf, `{"measure_time":`...)
			buf = strconv.AppendInt(buf, start, 10)
			buf = append(buf, `,"gauges":[`...)
		}
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
	// add starts one measurement object, flushing first when the batch is full.
	add := func() {
		if n == e.maxN {
			flush()
			open()
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		n++
	}
	open()
	for i := range b.Series {
		s := &b.Series[i]
		if s.Name == "" || !encodable(s) {
			st.skipped++
			continue
		}
		st.series++
		switch s.Kind {
		case metric.Counter:
			add()
			buf = e.appendHead(buf, s, "", period)
			buf = appendField(buf, "value", s.Sum)
			buf = append(buf, '}')
		case metric.Sample:
			add()
			buf = e.appendHead(buf, s, "", period)
			buf = appendField(buf, "value", s.Last)
			buf = append(buf, '}')
		case metric.Measure:
			add()
			buf = e.appendHead(buf, s, "", period)
			buf = append(buf, `,"count":`...)
			buf = strconv.AppendInt(buf, s.Count, 10)
			buf = appendField(buf, "sum", s.Sum)
			buf = appendField(buf, "min", s.Min)
			buf = appendField(buf, "max", s.Max)
			if e.tagged {
				buf = appendField(buf, "last", s.Last)
			} else {
				buf = appendField(buf, "sum_squares", s.SumSquares)
			}
			buf = append(buf, '}')
			for j, v := range [3]float64{s.Median, s.P95, s.P99} {
				add()
				buf = e.appendHead(buf, s, percentileSuffixes[j], period)
				buf = appendField(buf, "value", v)
				buf = append(buf, '}')
			}
		default:
			st.series--
			st.skipped++
		}
	}
	flush()
	e.scratch = buf
	return st
}

// appendHead appends `{"name":…` and the fields every measurement of s shares:
// source or tags, period (legacy API, per gauge) and units.
func (e *encoder) appendHead(buf []byte, s *aggregate.Series, suffix string, period int64) []byte {
	buf = append(buf, `{"name":`...)
	buf = appendMetricName(buf, e.prefix, s.Name, suffix)
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
		buf = append(buf, '}')
	} else {
		if s.Source != "" {
			buf = append(buf, `,"source":`...)
			buf = appendSource(buf, s.Source)
		}
		if period > 0 {
			buf = append(buf, `,"period":`...)
			buf = strconv.AppendInt(buf, period, 10)
		}
	}
	if s.Unit != "" {
		buf = append(buf, `,"attributes":{"display_units_short":`...)
		buf = appendJSONString(buf, s.Unit)
		buf = append(buf, '}')
	}
	return buf
}

// encodable reports whether every value the series sends is a finite number
// below Librato's magnitude limit.
func encodable(s *aggregate.Series) bool {
	switch s.Kind {
	case metric.Counter:
		return finite(s.Sum)
	case metric.Sample:
		return finite(s.Last)
	case metric.Measure:
		return finite(s.Sum) && finite(s.Min) && finite(s.Max) && finite(s.SumSquares) && finite(s.Last) &&
			finite(s.Median) && finite(s.P95) && finite(s.P99)
	}
	return true
}

func finite(v float64) bool { return math.Abs(v) < maxAbsValue } // false for NaN and ±Inf too

// appendField appends `,"key":value`.
func appendField(buf []byte, key string, v float64) []byte {
	buf = append(buf, ',', '"')
	buf = append(buf, key...)
	buf = append(buf, '"', ':')
	return appendFloat(buf, v)
}

// appendFloat appends v the way encoding/json does: shortest representation,
// plain notation unless the magnitude is below 1e-6 or at least 1e21.
func appendFloat(buf []byte, v float64) []byte {
	abs := math.Abs(v)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		return strconv.AppendFloat(buf, v, 'e', -1, 64)
	}
	return strconv.AppendFloat(buf, v, 'f', -1, 64)
}

// appendJSONString appends s as a JSON string, escaping quotes, backslashes and
// control characters and replacing invalid UTF-8 with U+FFFD.
func appendJSONString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				buf = append(buf, '\\', c)
			case c < 0x20:
				buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				buf = append(buf, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, `\ufffd`...)
		} else {
			buf = append(buf, s[i:i+size]...)
		}
		i += size
	}
	return append(buf, '"')
}

// sanitizePrefix applies the metric-name rule to a configured prefix and
// removes leading and trailing dots, so "a.b." does not yield "a.b..x".
func sanitizePrefix(p string) string {
	return strings.Trim(SanitizeName(p), ".")
}
