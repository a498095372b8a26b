// Package console is the local outlet: it prints every flushed bucket as
// readable logfmt lines, one per series, so that a worker run without any
// metrics account (`webapp | worker -stdin`) shows what it aggregated.
//
// A bucket of 60 s holding a counter, a sample and a measure prints as:
//
//	bucket=2024-05-01T12:00:00Z period=60s source=web.1 count#app.req=12
//	bucket=2024-05-01T12:00:00Z period=60s source=web.1 sample#app.memory_rss=21.22MB
//	bucket=2024-05-01T12:00:00Z period=60s source=web.1 measure#app.db.latency count=3 sum=12 min=2 max=6 mean=4 median=4 perc95=6 perc99=6 unit=ms
//
// The kind keeps the l2met prefix it arrived with; names carry the configured
// prefix; numbers never use exponent form and have at most 12 significant
// digits (as the emitter prints them: 909.5, not 909.5000000000001). A name,
// source or unit holding a space, '=', a quote, a backslash, a control
// character or invalid UTF-8 is printed Go-quoted ("web.1\nx"), so that
// input can never inject a line or a field into the output.
package console

import (
	"context"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dynometrics/dynometrics/emitter"
	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/outlet"
)

// Outlet writes buckets to an io.Writer. It implements outlet.Outlet and is
// safe for concurrent use.
type Outlet struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
	stats  Stats
}

// Stats are the console outlet's counters.
type Stats struct {
	Series      int64 `metric:"-"`                 // series printed (a volume, not published)
	WriteErrors int64 `metric:"write_errors,drop"` // buckets whose write failed (lost: stdout is gone)
}

// New returns an Outlet writing to w, naming metrics prefix+"."+name (just name
// when prefix is empty). In multi-app mode each line carries app=APP and the
// prefix is outlet.PrefixFor(prefix, APP).
func New(w io.Writer, prefix string) *Outlet {
	return &Outlet{w: w, prefix: prefix}
}

// Write prints b, one line per series, in one write call.
func (o *Outlet) Write(b *aggregate.Bucket) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf = AppendBucket(o.buf[:0], b, o.prefix)
	var err error
	if len(o.buf) > 0 {
		if _, err = o.w.Write(o.buf); err != nil {
			o.stats.WriteErrors++
		} else {
			o.stats.Series += int64(len(b.Series))
		}
	}
	if b.Done != nil {
		b.Done("console", err)
	}
}

// Close does nothing: every bucket is written when it arrives.
func (o *Outlet) Close(context.Context) error { return nil }

// Stats returns how many series were printed and how many writes failed.
func (o *Outlet) Stats() Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stats
}

// AppendBucket appends the lines for b to dst and returns it.
func AppendBucket(dst []byte, b *aggregate.Bucket, prefix string) []byte {
	head := "bucket=" + b.Start.UTC().Format(time.RFC3339) + " period=" + strconv.FormatFloat(b.Period.Seconds(), 'f', -1, 64) + "s"
	base, app := prefix, ""
	for i := range b.Series {
		s := &b.Series[i]
		if s.App != app { // multi-app mode: series come sorted by app
			app, prefix = s.App, outlet.PrefixFor(base, s.App)
		}
		dst = append(dst, head...)
		if s.App != "" {
			dst = append(dst, " app="...)
			dst = append(dst, s.App...) // a valid app name: nothing to quote
		}
		if s.Source != "" {
			dst = append(dst, " source="...)
			dst = appendText(dst, s.Source)
		}
		dst = append(dst, ' ')
		dst = append(dst, s.Kind.String()...)
		dst = append(dst, '#')
		switch {
		case prefix == "":
			dst = appendText(dst, s.Name)
		case quote(prefix) || quote(s.Name):
			dst = strconv.AppendQuote(dst, prefix+"."+s.Name)
		default:
			dst = append(append(append(dst, prefix...), '.'), s.Name...)
		}
		switch s.Kind {
		case metric.Counter:
			dst = appendText(appendField(dst, "=", s.Sum), s.Unit)
		case metric.Sample:
			dst = appendText(appendField(dst, "=", s.Last), s.Unit)
		default:
			dst = appendField(dst, " count=", float64(s.Count))
			dst = appendField(dst, " sum=", s.Sum)
			dst = appendField(dst, " min=", s.Min)
			dst = appendField(dst, " max=", s.Max)
			if s.Count > 0 {
				dst = appendField(dst, " mean=", s.Sum/float64(s.Count))
			}
			dst = appendField(dst, " median=", s.Median)
			dst = appendField(dst, " perc95=", s.P95)
			dst = appendField(dst, " perc99=", s.P99)
			if s.Unit != "" {
				dst = append(dst, " unit="...)
				dst = appendText(dst, s.Unit)
			}
		}
		dst = append(dst, '\n')
	}
	return dst
}

func appendField(dst []byte, key string, v float64) []byte {
	return emitter.AppendValue(append(dst, key...), v)
}

// appendText appends s as is when it is plain text, else Go-quoted (see the
// package comment), so that a name or source cannot break the line.
func appendText(dst []byte, s string) []byte {
	if quote(s) {
		return strconv.AppendQuote(dst, s)
	}
	return append(dst, s...)
}

// quote reports whether s must be quoted: it holds a space, '=', '"', '\\',
// a control character, a non-printable rune or invalid UTF-8.
func quote(s string) bool {
	return !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool {
		return r <= ' ' || r == '=' || r == '"' || r == '\\' || !strconv.IsPrint(r) // IsPrint: not DEL either
	})
}
