package main

import (
	"fmt"
	"slices"
	"time"
)

// Shape of the corpus: every line carries perLine measurements of one
// source (a dyno), and a source has at most namesPerSource metric names.
const (
	perLine        = 10
	namesPerSource = 1000
	tsLayout       = "2006-01-02T15:04:05.000000+00:00" // fixed width: the bodies are patched in place
)

// corpus is a set of Logplex drain bodies that together carry every one of
// a number of distinct series (name, source) once. Each body is a template:
// every line's timestamp is overwritten with the time of sending.
type corpus struct {
	bodies [][]byte
	lines  []int   // lines per body
	ts     [][]int // offsets of the lines' timestamps
	series int
}

// newCorpus builds the bodies for series distinct series (a multiple of
// perLine), bodyLines lines per body (the last may be shorter). Series i is
// capacity.m<i mod names> of dyno web.<i div names>, names =
// min(series, namesPerSource); three tenths each are count# and sample#,
// four tenths measure# in ms (the kind follows the name).
func newCorpus(series, bodyLines int) (*corpus, error) {
	if series <= 0 || series%perLine != 0 || bodyLines <= 0 {
		return nil, fmt.Errorf("series must be a positive multiple of %d, body lines positive", perLine)
	}
	names := min(series, namesPerSource) // a multiple of perLine, as series and namesPerSource are
	placeholder := time.Unix(0, 0).UTC().Format(tsLayout)
	var msgs [][]byte
	for l := range series / perLine {
		first := l * perLine
		msg := fmt.Appendf(nil, "<190>1 %s host app web.%d - at=info", placeholder, first/names+1)
		for j := range perLine {
			idx := (first + j) % names
			v := (l*7 + j*13) % 1000
			switch idx % 10 {
			case 0, 1, 2:
				msg = fmt.Appendf(msg, " count#capacity.m%04d=%d", idx, 1+v%5)
			case 3, 4, 5:
				msg = fmt.Appendf(msg, " sample#capacity.m%04d=%d.%d", idx, v, j)
			default:
				msg = fmt.Appendf(msg, " measure#capacity.m%04d=%d.%dms", idx, v, j)
			}
		}
		msgs = append(msgs, msg)
	}
	c := &corpus{series: series}
	for chunk := range slices.Chunk(msgs, bodyLines) {
		var body []byte
		var offs []int
		for _, m := range chunk {
			body = fmt.Appendf(body, "%d ", len(m))
			offs = append(offs, len(body)+len("<190>1 "))
			body = append(body, m...)
		}
		c.bodies, c.lines, c.ts = append(c.bodies, body), append(c.lines, len(chunk)), append(c.ts, offs)
	}
	return c, nil
}

// stamp copies body b into dst with every line stamped t.
func (c *corpus) stamp(dst []byte, b int, t time.Time) []byte {
	dst = append(dst[:0], c.bodies[b]...)
	var ts [len(tsLayout)]byte
	stamp := t.UTC().AppendFormat(ts[:0], tsLayout)
	for _, o := range c.ts[b] {
		copy(dst[o:], stamp)
	}
	return dst
}
