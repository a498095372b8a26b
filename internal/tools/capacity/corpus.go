package main

import (
	"bytes"
	"fmt"
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
// min(series, namesPerSource); a tenth each are count#, three tenths
// sample#, four tenths measure# in ms (the kind follows the name).
func newCorpus(series, bodyLines int) (*corpus, error) {
	if series <= 0 || series%perLine != 0 || bodyLines <= 0 {
		return nil, fmt.Errorf("series must be a positive multiple of %d, body lines positive", perLine)
	}
	names := min(series, namesPerSource)
	if names%perLine != 0 {
		return nil, fmt.Errorf("series must be a multiple of %d", perLine)
	}
	c := &corpus{series: series}
	var buf bytes.Buffer
	var offs []int
	n := 0
	flush := func() {
		if n == 0 {
			return
		}
		c.bodies = append(c.bodies, bytes.Clone(buf.Bytes()))
		c.lines = append(c.lines, n)
		c.ts = append(c.ts, offs)
		buf.Reset()
		offs, n = nil, 0
	}
	placeholder := time.Unix(0, 0).UTC().Format(tsLayout)
	var msg bytes.Buffer
	for l := range series / perLine {
		first := l * perLine
		dyno := first / names
		msg.Reset()
		fmt.Fprintf(&msg, "<190>1 %s host app web.%d - at=info", placeholder, dyno+1)
		for j := range perLine {
			i := first + j
			idx := i % names
			v := (l*7 + j*13) % 1000
			switch idx % 10 {
			case 0, 1, 2:
				fmt.Fprintf(&msg, " count#capacity.m%04d=%d", idx, 1+v%5)
			case 3, 4, 5:
				fmt.Fprintf(&msg, " sample#capacity.m%04d=%d.%d", idx, v, j)
			default:
				fmt.Fprintf(&msg, " measure#capacity.m%04d=%d.%dms", idx, v, j)
			}
		}
		fmt.Fprintf(&buf, "%d ", msg.Len())
		offs = append(offs, buf.Len()+len("<190>1 "))
		buf.Write(msg.Bytes())
		n++
		if n == bodyLines {
			flush()
		}
	}
	flush()
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
