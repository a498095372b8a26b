// Package metric holds the measurement type every parser produces and the
// aggregator, the shared state and every outlet consume. It imports nothing of
// the project, so that no parser depends on another and no outlet on a parser.
package metric

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kind says how a measurement aggregates within a time bucket.
type Kind uint8

// The measurement kinds, one per l2met convention.
const (
	// Counter is a count#name=N pair: values are summed per bucket.
	Counter Kind = 1
	// Sample is a sample#name=V pair: the last value by timestamp wins.
	Sample Kind = 2
	// Measure is a measure#name=V pair: count, sum, min, max, sum of squares and
	// percentiles are kept per bucket.
	Measure Kind = 3
)

// String returns the l2met prefix of the kind: "count", "sample" or "measure".
func (k Kind) String() string {
	if k < Counter || k > Measure {
		return "unknown"
	}
	return [...]string{Counter: "count", Sample: "sample", Measure: "measure"}[k]
}

// Measurement is one value parsed from a log line: the hand-over from parsing to
// aggregation. Name, Source and Unit are never hostnames; Source is the dyno
// (web.1), the router's dyno= field, or an add-on attachment name (DATABASE).
// Time is in UTC.
//
// Dist, when not nil, carries a pre-aggregated distribution (an OTLP
// histogram point) instead of one value: Kind is then Measure and Value is
// ignored by the aggregator, which merges the whole distribution into the
// series. Parsers of log lines leave it nil.
type Measurement struct {
	// App is the Heroku app the measurement came from, as the request's
	// credentials authenticated it (multi-app mode, DRAIN_SECRET); empty in
	// single-app mode. It is a dimension of every series: two apps' series
	// with the same Name and Source are two series.
	App    string
	Name   string
	Source string
	Time   time.Time
	Kind   Kind
	Value  float64
	Unit   string
	Dist   *Distribution
}

// Distribution is a set of values already aggregated elsewhere: their count,
// sum, minimum and maximum, and representative values with the number of
// values each stands for. The Bins' counts add up to Count, every bin's Value
// lies within [Min, Max], and Bins are in ascending order of Value. Producers
// (the OTLP receiver) guarantee these invariants; the aggregator trusts them.
type Distribution struct {
	Count    uint64
	Sum      float64
	Min, Max float64
	Bins     []Bin
}

// Bin is one representative value of a Distribution and how many of its
// values it stands for.
type Bin struct {
	Value float64
	Count uint64
}

// UnsafeText reports whether s holds a rune that would change how the text
// around it is shown: a control character (C0, C1), a format character
// (Unicode category Cf: the bidirectional overrides and isolates U+202A–U+202E
// and U+2066–U+2069, zero-width characters), a line or paragraph separator,
// or invalid UTF-8 ("abc\u202egnp.exe" reads "abcexe.png"). The OTLP
// receiver refuses names and sources for which it holds; the live view keeps
// those of every input off the page.
func UnsafeText(s string) bool {
	return !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool {
		if r < utf8.RuneSelf {
			return r < 0x20 || r == 0x7f
		}
		return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)
	})
}
