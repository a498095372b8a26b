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
// prefix; numbers never use exponent form.
package console

import (
	"context"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// Outlet writes buckets to an io.Writer. It implements outlet.Outlet and is
// safe for concurrent use.
type Outlet struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
	series int64
	errs   int64
}

// New returns an Outlet writing to w, naming metrics prefix+"."+name (just name
// when prefix is empty).
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
			o.errs++
		} else {
			o.series += int64(len(b.Series))
		}
	}
	if b.Done != nil {
		b.Done("console", err)
	}
}

// Close does nothing: every bucket is written when it arrives.
func (o *Outlet) Close(context.Context) error { return nil }

// Stats returns how many series were printed and how many writes failed.
func (o *Outlet) Stats() (series, writeErrors int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.series, o.errs
}

// AppendBucket appends the lines for b to dst and returns it.
func AppendBucket(dst []byte, b *aggregate.Bucket, prefix string) []byte {
	start := b.Start.UTC().Format(time.RFC3339)
	period := strconv.FormatFloat(b.Period.Seconds(), 'f', -1, 64) + "s"
	for i := range b.Series {
		s := &b.Series[i]
		dst = append(dst, "bucket="...)
		dst = append(dst, start...)
		dst = append(dst, " period="...)
		dst = append(dst, period...)
		if s.Source != "" {
			dst = append(dst, " source="...)
			dst = append(dst, s.Source...)
		}
		dst = append(dst, ' ')
		dst = append(dst, s.Kind.String()...)
		dst = append(dst, '#')
		if prefix != "" {
			dst = append(dst, prefix...)
			dst = append(dst, '.')
		}
		dst = append(dst, s.Name...)
		switch s.Kind {
		case metric.Counter:
			dst = append(dst, '=')
			dst = appendFloat(dst, s.Sum)
			dst = append(dst, s.Unit...)
		case metric.Sample:
			dst = append(dst, '=')
			dst = appendFloat(dst, s.Last)
			dst = append(dst, s.Unit...)
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
				dst = append(dst, s.Unit...)
			}
		}
		dst = append(dst, '\n')
	}
	return dst
}

func appendField(dst []byte, key string, v float64) []byte {
	return appendFloat(append(dst, key...), v)
}

func appendFloat(dst []byte, v float64) []byte {
	return strconv.AppendFloat(dst, v, 'f', -1, 64)
}
