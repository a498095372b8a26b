package console

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// FuzzAppendBucket: whatever a series' name, source and unit hold, each
// series prints as exactly one line, and a quoted field unquotes to what it
// was (no line or field injection).
func FuzzAppendBucket(f *testing.F) {
	for _, s := range [][3]string{{"a", "web.1", "ms"}, {"a", "web.1\nbucket=x count#y=1", ""}, {"b c=d", "\xff", "\""},
		{"café", "web 1", "\u2028"}, {"", "", ""}} {
		f.Add(s[0], s[1], s[2], 1.5)
	}
	f.Fuzz(func(t *testing.T, name, source, unit string, v float64) {
		b := &aggregate.Bucket{Start: time.Unix(0, 0), Period: time.Minute, Series: []aggregate.Series{
			{Name: name, Source: source, Unit: unit, Kind: metric.Counter, Sum: v},
			{Name: name, Source: source, Unit: unit, Kind: metric.Measure, Count: 1, Sum: v, Min: v, Max: v},
		}}
		out := AppendBucket(nil, b, "p")
		if n := bytes.Count(out, []byte("\n")); n != 2 {
			t.Fatalf("%d lines for 2 series:\n%s", n, out)
		}
		for _, s := range []string{source, unit} {
			if s == "" || !quote(s) {
				continue
			}
			q := strconv.Quote(s)
			if !bytes.Contains(out, []byte(q)) {
				t.Fatalf("%q not printed quoted as %s:\n%s", s, q, out)
			}
			if u, err := strconv.Unquote(q); err != nil || u != s {
				t.Fatalf("%s does not unquote to %q", q, s)
			}
		}
	})
}
