package promwrite

import (
	"regexp"
	"sort"
	"testing"
	"unicode/utf8"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
)

var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// FuzzEncode feeds drain-controlled strings (name, unit, source) through the
// encoder and checks that what a receiver decodes is valid remote write:
// valid names, UTF-8 values, labels sorted and unique.
func FuzzEncode(f *testing.F) {
	f.Add("router.service", "ms", "web.1", uint8(3), 12.5)
	f.Add("5xx", "%", "", uint8(1), 1.0)
	f.Add("größe", "MB", "web\xff1", uint8(2), -3.0)
	f.Add("", "", "", uint8(0), 0.0)
	f.Fuzz(func(t *testing.T, name, unit, source string, kind uint8, v float64) {
		e := newEncoder("p.x", map[string]string{"app": "a", "Zone": "z"}, 10)
		b := bucket(t0, aggregate.Series{Name: name, Unit: unit, Source: source, Kind: metric.Kind(kind % 4),
			Count: 1, Sum: v, Min: v, Max: v, Last: v, Median: v, P95: v, P99: v})
		e.encode(b, 3, func(body []byte, n int) {
			series, err := decodeBody(body)
			if err != nil || len(series) != n {
				t.Fatalf("decode: %v (%d series, want %d)", err, len(series), n)
			}
			for _, s := range series {
				names := make([]string, len(s.Labels))
				for i, l := range s.Labels {
					names[i] = l[0]
					if l[0] == labelName && !metricNameRE.MatchString(l[1]) {
						t.Fatalf("metric name %q invalid", l[1])
					}
					if l[0] != labelName && !labelNameRE.MatchString(l[0]) {
						t.Fatalf("label name %q invalid", l[0])
					}
					if l[1] == "" || !utf8.ValidString(l[1]) {
						t.Fatalf("label %s value %q empty or invalid UTF-8", l[0], l[1])
					}
				}
				if !sort.StringsAreSorted(names) {
					t.Fatalf("labels not sorted: %v", names)
				}
				for i := 1; i < len(names); i++ {
					if names[i] == names[i-1] {
						t.Fatalf("label %s twice", names[i])
					}
				}
				if len(s.Samples) != 1 || s.Samples[0][1] != ts0 {
					t.Fatalf("samples %v", s.Samples)
				}
			}
		})
	})
}
