package librato

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// FuzzEncode: whatever the names, sources, units and values, every body is
// valid JSON, no two measurements of a bucket share a name and source, and a
// series is only skipped when none of its values can be carried.
func FuzzEncode(f *testing.F) {
	f.Add("coll.é", "coll.ü", "ALL", "all", "ms", 1.0, 1e64, false)
	f.Add("a", "a.median", "web.1", "web.1", "", math.NaN(), 2e126, true)
	f.Fuzz(func(t *testing.T, n1, n2, s1, s2, unit string, v1, v2 float64, tagged bool) {
		b := &aggregate.Bucket{Start: time.Unix(1714564800, 0), Period: time.Minute, Series: []aggregate.Series{
			{Name: n1, Source: s1, Unit: unit, Kind: metric.Measure, Count: 2, Sum: v1 + v2, Min: v1, Max: v2, SumSquares: v1*v1 + v2*v2, Last: v2, Median: v1, P95: v2, P99: v2},
			{Name: n2, Source: s2, Unit: unit, Kind: metric.Sample, Count: 1, Last: v2},
			{Name: n1, Source: s2, Kind: metric.Counter, Count: 1, Sum: v1},
		}}
		e := newEncoder(tagged, "p", nil)
		seen := map[string]bool{}
		total := 0
		st := e.encode(b, func(body []byte, n int) {
			var doc struct {
				Gauges       []map[string]any `json:"gauges"`
				Measurements []map[string]any `json:"measurements"`
			}
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatalf("invalid JSON %v: %s", err, body)
			}
			ms := append(doc.Gauges, doc.Measurements...)
			if len(ms) != n {
				t.Fatalf("%d measurements, emit says %d", len(ms), n)
			}
			for _, m := range ms {
				id, _ := json.Marshal([]any{m["name"], m["source"], m["tags"]})
				if seen[string(id)] {
					t.Fatalf("identity %s sent twice in one bucket: %s", id, body)
				}
				seen[string(id)] = true
			}
			total += n
		})
		if st.measurements != total || st.series+st.skipped > 3 {
			t.Fatalf("stats %+v, %d measurements emitted", st, total)
		}
	})
}
