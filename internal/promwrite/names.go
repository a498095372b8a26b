package promwrite

import (
	"strings"
	"unicode/utf8"

	"github.com/dynometrics/dynometrics/internal/metric"
)

// Suffixes appended to the metric name of each series kind. See the package
// documentation for the whole mapping.
const (
	suffixTotal = "_total" // count#: cumulative counter
	suffixSum   = "_sum"   // measure#: cumulative sum of the values
	suffixCount = "_count" // measure#: cumulative number of values
	suffixMin   = "_min"   // measure#: per-bucket minimum (gauge)
	suffixMax   = "_max"   // measure#: per-bucket maximum (gauge)
)

// unitConv says how an l2met unit maps to a Prometheus name suffix and by how
// much values in that unit are multiplied.
type unitConv struct {
	suffix string  // appended as "_"+suffix unless the name already ends with it
	factor float64 // value multiplier; 1 keeps the value
}

// units are the l2met unit strings converted to Prometheus base units
// (seconds, bytes). Sizes use powers of 1024: Heroku's runtime metrics
// (memory_rss=21.22MB) and Postgres' kB figures are binary units. Units not
// listed are sanitized and appended as they are, without converting the value.
var units = map[string]unitConv{
	"ns":      {"seconds", 1e-9},
	"us":      {"seconds", 1e-6},
	"µs":      {"seconds", 1e-6}, // U+00B5 MICRO SIGN
	"μs":      {"seconds", 1e-6}, // U+03BC GREEK SMALL LETTER MU
	"ms":      {"seconds", 1e-3},
	"s":       {"seconds", 1},
	"sec":     {"seconds", 1},
	"seconds": {"seconds", 1},
	"B":       {"bytes", 1},
	"byte":    {"bytes", 1},
	"bytes":   {"bytes", 1},
	"kB":      {"bytes", 1 << 10},
	"KB":      {"bytes", 1 << 10},
	"KiB":     {"bytes", 1 << 10},
	"MB":      {"bytes", 1 << 20},
	"MiB":     {"bytes", 1 << 20},
	"GB":      {"bytes", 1 << 30},
	"GiB":     {"bytes", 1 << 30},
	"%":       {"percent", 1},
	"":        {"", 1}, // no unit: no suffix
}

// convertUnit returns the name suffix (without the leading "_", may be empty)
// and the value factor for an l2met unit.
func convertUnit(unit string) unitConv {
	if c, ok := units[unit]; ok {
		return c
	}
	return unitConv{suffix: SanitizeLabelName(unit), factor: 1}
}

// family holds the metric names one input series maps to.
type family struct {
	base   string  // sample gauge, measure quantiles
	total  string  // counter
	sum    string  // measure
	count  string  // measure
	min    string  // measure
	max    string  // measure
	factor float64 // unit conversion applied to values (not counts)
}

// newFamily computes the metric names for an input series: prefix and name
// joined with "_", sanitized, then the unit suffix and the kind's suffixes.
func newFamily(prefix, name, unit string, kind metric.Kind) family {
	full := name
	if prefix != "" {
		full = prefix + "_" + name
	}
	base := SanitizeMetricName(full)
	c := convertUnit(unit)
	if c.suffix != "" {
		base = addSuffix(base, "_"+c.suffix)
	}
	f := family{base: base, factor: c.factor}
	switch kind {
	case metric.Counter:
		f.total = addSuffix(base, suffixTotal)
	case metric.Measure:
		f.sum = base + suffixSum
		f.count = base + suffixCount
		f.min = base + suffixMin
		f.max = base + suffixMax
	}
	return f
}

// addSuffix appends suffix unless name already ends with it.
func addSuffix(name, suffix string) string {
	if strings.HasSuffix(name, suffix) {
		return name
	}
	return name + suffix
}

// SanitizeMetricName maps s to a valid Prometheus metric name
// ([a-zA-Z_:][a-zA-Z0-9_:]*): every other character (dots, dashes, spaces,
// each non-ASCII rune) becomes "_", and a leading digit gets a "_" prefix. An
// empty s gives "_". Safe for concurrent use.
func SanitizeMetricName(s string) string {
	return sanitize(s, true)
}

// SanitizeLabelName maps s to a valid Prometheus label name
// ([a-zA-Z_][a-zA-Z0-9_]*) the same way SanitizeMetricName does, except that
// ":" is replaced too. Safe for concurrent use.
func SanitizeLabelName(s string) string {
	return sanitize(s, false)
}

func validNameByte(c byte, colon bool) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || colon && c == ':'
}

func sanitize(s string, colon bool) string {
	if s == "" {
		return "_"
	}
	digit := s[0] >= '0' && s[0] <= '9'
	clean := !digit
	for i := 0; clean && i < len(s); i++ {
		clean = validNameByte(s[i], colon)
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 1)
	if digit {
		b.WriteByte('_')
	}
	for _, r := range s { // one '_' per rune, and per byte of invalid UTF-8
		if r < utf8.RuneSelf && validNameByte(byte(r), colon) {
			b.WriteByte(byte(r))
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
