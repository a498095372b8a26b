package promwrite

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// t0 is a bucket start; samples carry the bucket end, t0+60s = 1714564860000 ms.
var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

const ts0 = 1714564860000

func bucket(start time.Time, series ...aggregate.Series) *aggregate.Bucket {
	return &aggregate.Bucket{Start: start, Period: time.Minute, Series: series}
}

// TestMarshalMatchesPrompb compares the encoder's bytes with the output of
// github.com/prometheus/prometheus/prompb (v0.316.0) WriteRequest.Marshal for
// the same request, produced once outside this module (prompb is not a
// dependency): two series, one with a zero value (omitted on the wire), tags
// sorting before and after __name__.
func TestMarshalMatchesPrompb(t *testing.T) {
	const want = "0a4e0a0a0a045a6f6e65120265750a130a085f5f6e616d655f5f1207785f746f74616c0a080a036170701201610a0f0a06736f7572636512057765622e31121009000000000000084010e0909ea0f331" +
		"0a490a0a0a045a6f6e65120265750a170a085f5f6e616d655f5f120b6c61745f7365636f6e64730a080a036170701201610a0f0a087175616e74696c651203302e35120710e0909ea0f331"
	e := newEncoder("", map[string]string{"app": "a", "Zone": "eu"}, 10)
	got := e.appendWriteRequest(nil, []sample{
		{name: "x_total", source: "web.1", value: 3},
		{name: "lat_seconds", quantile: "0.5", value: 0},
	}, ts0)
	if h := hex.EncodeToString(got); h != want {
		t.Fatalf("encoding differs from prompb:\ngot  %s\nwant %s", h, want)
	}
}

func decodeStrings(t *testing.T, body []byte) []string {
	t.Helper()
	series, err := decodeBody(body)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	out := make([]string, len(series))
	for i, s := range series {
		out[i] = s.String()
	}
	return out
}

func encodeAll(t *testing.T, e *encoder, b *aggregate.Bucket, max int) [][]string {
	t.Helper()
	var out [][]string
	e.encode(b, max, func(body []byte, n int) {
		got := decodeStrings(t, body)
		if len(got) != n {
			t.Errorf("emit n=%d, body has %d series", n, len(got))
		}
		out = append(out, got)
	})
	return out
}

func TestEncodeMapping(t *testing.T) {
	e := newEncoder("us-east.prod.app", map[string]string{"app": "shop"}, 100)
	b := bucket(t0,
		aggregate.Series{Name: "db.query", Source: "web.1", Unit: "ms", Kind: metric.Measure,
			Count: 4, Sum: 100, Min: 10, Max: 40, Median: 20, P95: 40, P99: 40},
		aggregate.Series{Name: "memory_rss", Source: "web.1", Unit: "MB", Kind: metric.Sample, Count: 2, Last: 1.5},
		aggregate.Series{Name: "requests", Kind: metric.Counter, Count: 3, Sum: 7},
		aggregate.Series{Name: "load", Source: "web.2", Unit: "%", Kind: metric.Sample, Count: 1, Last: 30},
	)
	got := encodeAll(t, e, b, 100)
	want := []string{
		`us_east_prod_app_db_query_seconds{app="shop",quantile="0.5",source="web.1"} 0.02 @1714564860000`,
		`us_east_prod_app_db_query_seconds{app="shop",quantile="0.95",source="web.1"} 0.04 @1714564860000`,
		`us_east_prod_app_db_query_seconds{app="shop",quantile="0.99",source="web.1"} 0.04 @1714564860000`,
		`us_east_prod_app_db_query_seconds_count{app="shop",source="web.1"} 4 @1714564860000`,
		`us_east_prod_app_db_query_seconds_max{app="shop",source="web.1"} 0.04 @1714564860000`,
		`us_east_prod_app_db_query_seconds_min{app="shop",source="web.1"} 0.01 @1714564860000`,
		`us_east_prod_app_db_query_seconds_sum{app="shop",source="web.1"} 0.1 @1714564860000`,
		`us_east_prod_app_load_percent{app="shop",source="web.2"} 30 @1714564860000`,
		`us_east_prod_app_memory_rss_bytes{app="shop",source="web.1"} 1572864 @1714564860000`,
		`us_east_prod_app_requests_total{app="shop"} 7 @1714564860000`,
	}
	if len(got) != 1 || strings.Join(got[0], "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(flatten(got), "\n"), strings.Join(want, "\n"))
	}
}

func flatten(reqs [][]string) []string {
	var out []string
	for i, r := range reqs {
		for _, s := range r {
			out = append(out, fmt.Sprintf("%d %s", i, s))
		}
	}
	return out
}

func TestEncodeCumulative(t *testing.T) {
	e := newEncoder("", nil, 100)
	steps := []struct {
		b    *aggregate.Bucket
		want []string
	}{
		{bucket(t0,
			aggregate.Series{Name: "hits", Source: "web.1", Kind: metric.Counter, Count: 2, Sum: 5},
			aggregate.Series{Name: "lat", Source: "web.1", Kind: metric.Measure, Count: 2, Sum: 3, Min: 1, Max: 2, Median: 1, P95: 2, P99: 2},
		), []string{
			`hits_total{source="web.1"} 5 @1714564860000`,
			`lat{quantile="0.5",source="web.1"} 1 @1714564860000`,
			`lat{quantile="0.95",source="web.1"} 2 @1714564860000`,
			`lat{quantile="0.99",source="web.1"} 2 @1714564860000`,
			`lat_count{source="web.1"} 2 @1714564860000`,
			`lat_max{source="web.1"} 2 @1714564860000`,
			`lat_min{source="web.1"} 1 @1714564860000`,
			`lat_sum{source="web.1"} 3 @1714564860000`,
		}},
		// Second bucket: totals go on; web.2 starts at its own Sum.
		{bucket(t0.Add(time.Minute),
			aggregate.Series{Name: "hits", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 2},
			aggregate.Series{Name: "hits", Source: "web.2", Kind: metric.Counter, Count: 1, Sum: 1},
			aggregate.Series{Name: "lat", Source: "web.1", Kind: metric.Measure, Count: 1, Sum: 4, Min: 4, Max: 4, Median: 4, P95: 4, P99: 4},
		), []string{
			`hits_total{source="web.1"} 7 @1714564920000`,
			`hits_total{source="web.2"} 1 @1714564920000`,
			`lat{quantile="0.5",source="web.1"} 4 @1714564920000`,
			`lat{quantile="0.95",source="web.1"} 4 @1714564920000`,
			`lat{quantile="0.99",source="web.1"} 4 @1714564920000`,
			`lat_count{source="web.1"} 3 @1714564920000`,
			`lat_max{source="web.1"} 4 @1714564920000`,
			`lat_min{source="web.1"} 4 @1714564920000`,
			`lat_sum{source="web.1"} 7 @1714564920000`,
		}},
		// A late bucket (same start again): nothing sent, totals updated.
		{bucket(t0.Add(time.Minute),
			aggregate.Series{Name: "hits", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 10},
		), nil},
		// The late value shows up in the next bucket's total.
		{bucket(t0.Add(2*time.Minute),
			aggregate.Series{Name: "hits", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 1},
		), []string{
			`hits_total{source="web.1"} 18 @1714564980000`,
		}},
	}
	for i, st := range steps {
		got := flatten(encodeAll(t, e, st.b, 100))
		var want []string
		for _, w := range st.want {
			want = append(want, "0 "+w)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("step %d: got\n%s\nwant\n%s", i, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if e.late != 1 {
		t.Errorf("late = %d, want 1", e.late)
	}
}

func TestEncodeBatches(t *testing.T) {
	e := newEncoder("", nil, 100)
	var series []aggregate.Series
	for _, src := range []string{"web.1", "web.2", "web.3", "web.4", "web.5"} {
		series = append(series, aggregate.Series{Name: "g", Source: src, Kind: metric.Sample, Count: 1, Last: 1})
	}
	got := encodeAll(t, e, bucket(t0, series...), 2)
	if len(got) != 3 || len(got[0]) != 2 || len(got[1]) != 2 || len(got[2]) != 1 {
		t.Fatalf("batches %v, want sizes 2,2,1", got)
	}
	if got[2][0] != `g{source="web.5"} 1 @1714564860000` {
		t.Errorf("last batch = %v", got[2])
	}
	// An empty bucket sends nothing.
	if got := encodeAll(t, e, bucket(t0.Add(time.Minute)), 2); len(got) != 0 {
		t.Errorf("empty bucket gave %d requests", len(got))
	}
}

func TestEncodeCollisionsAndUnknown(t *testing.T) {
	e := newEncoder("", nil, 100)
	got := flatten(encodeAll(t, e, bucket(t0,
		aggregate.Series{Name: "a.b", Source: "web.1", Kind: metric.Sample, Count: 1, Last: 1},
		aggregate.Series{Name: "a_b", Source: "web.1", Kind: metric.Sample, Count: 1, Last: 2},
		aggregate.Series{Name: "zzz", Source: "web.1", Kind: 0, Count: 1, Last: 2},
		aggregate.Series{Name: "bad", Source: "web\xff1", Kind: metric.Sample, Count: 1, Last: 3},
	), 100))
	want := []string{
		`0 a_b{source="web.1"} 1 @1714564860000`,
		`0 bad{source="web` + "\uFFFD" + `1"} 3 @1714564860000`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if e.collisions != 1 || e.unknown != 1 {
		t.Errorf("collisions %d unknown %d, want 1 1", e.collisions, e.unknown)
	}
}

func TestTrackerBound(t *testing.T) {
	const max = 3
	e := newEncoder("", nil, max)
	c := func(src string, sum float64) aggregate.Series {
		return aggregate.Series{Name: "c", Source: src, Kind: metric.Counter, Count: 1, Sum: sum}
	}
	encodeAll(t, e, bucket(t0, c("a", 1), c("b", 1), c("c", 1)), 100)
	// "a" is refreshed, then "d" arrives at the bound: "b" (least recent) goes.
	encodeAll(t, e, bucket(t0.Add(time.Minute), c("a", 1)), 100)
	encodeAll(t, e, bucket(t0.Add(2*time.Minute), c("d", 1)), 100)
	if e.tr.Evicted() != 1 || e.tr.Len() != max {
		t.Fatalf("evicted %d tracked %d, want 1 %d", e.tr.Evicted(), e.tr.Len(), max)
	}
	got := flatten(encodeAll(t, e, bucket(t0.Add(3*time.Minute), c("a", 1), c("b", 1)), 100))
	want := []string{
		`0 c_total{source="a"} 3 @1714565040000`, // kept: 1+1+1
		`0 c_total{source="b"} 1 @1714565040000`, // forgotten: restarts (a counter reset to Prometheus)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if e.tr.Evicted() != 2 || e.tr.Len() != max || len(e.tr.names) > max {
		t.Fatalf("evicted %d tracked %d names %d", e.tr.Evicted(), e.tr.Len(), len(e.tr.names))
	}
}

// bigBucket returns n series shaped like a busy app: measures, counters and
// samples over 50 dynos.
func bigBucket(n int, start time.Time) *aggregate.Bucket {
	b := &aggregate.Bucket{Start: start, Period: time.Minute, Series: make([]aggregate.Series, 0, n)}
	for i := range n {
		s := aggregate.Series{
			Name:   fmt.Sprintf("app.metric_%04d", i/50),
			Source: fmt.Sprintf("web.%d", i%50+1),
			Count:  int64(i%7 + 1),
			Sum:    float64(i) * 1.5,
			Min:    0.25,
			Max:    float64(i),
			Last:   float64(i % 13),
			Median: 12.5,
			P95:    40.75,
			P99:    97.125,
		}
		switch i % 3 {
		case 0:
			s.Kind, s.Unit = metric.Counter, ""
		case 1:
			s.Kind, s.Unit = metric.Measure, "ms"
		case 2:
			s.Kind, s.Unit = metric.Sample, "MB"
		}
		b.Series = append(b.Series, s)
	}
	return b
}

// BenchmarkEncode10k encodes a bucket of 10,000 time series (3,334 input
// series: counters, measures and samples) into snappy-compressed requests of
// at most 2,000 series, the steady state after the first bucket.
func BenchmarkEncode10k(b *testing.B) {
	const outSeries = 10_000
	const in = 3334 // 1,112 counters (1 each), 1,111 measures (7 each), 1,111 samples (1 each)
	e := newEncoder("prod", map[string]string{"app": "shop"}, DefaultMaxTrackedSeries)
	bk := bigBucket(in, t0)
	var n, bytes, raw int
	e.encode(bk, DefaultMaxSeriesPerRequest, func(body []byte, k int) { n += k; bytes += len(body) })
	if n != outSeries {
		b.Fatalf("encoded %d series, want %d", n, outSeries)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		bytes, raw = 0, 0
		bk.Start = t0.Add(time.Duration(i+1) * time.Minute)
		e.encode(bk, DefaultMaxSeriesPerRequest, func(body []byte, _ int) { bytes += len(body); raw += len(e.pb) })
	}
	b.ReportMetric(float64(bytes), "snappy-bytes/op")
	b.ReportMetric(float64(raw), "proto-bytes/op")
}

// BenchmarkMarshal10k is the protobuf step alone (no snappy, no state).
func BenchmarkMarshal10k(b *testing.B) {
	e := newEncoder("prod", map[string]string{"app": "shop"}, DefaultMaxTrackedSeries)
	samples := append([]sample(nil), e.collect(bigBucket(3334, t0))...)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		e.pb = e.appendWriteRequest(e.pb[:0], samples, ts0)
	}
	b.SetBytes(int64(len(e.pb)))
}

// BenchmarkSnappy compresses one 2,000-series request body.
func BenchmarkSnappy(b *testing.B) {
	e := newEncoder("prod", map[string]string{"app": "shop"}, DefaultMaxTrackedSeries)
	samples := e.collect(bigBucket(3334, t0))[:DefaultMaxSeriesPerRequest]
	pb := e.appendWriteRequest(nil, samples, ts0)
	dst := make([]byte, snappy.MaxEncodedLen(len(pb)))
	b.SetBytes(int64(len(pb)))
	b.ReportAllocs()
	b.ResetTimer()
	var n int
	for range b.N {
		n = len(snappy.Encode(dst, pb))
	}
	b.ReportMetric(float64(n), "compressed-bytes")
}

// TestDocExample checks the mapping shown in the package documentation.
func TestDocExample(t *testing.T) {
	e := newEncoder("us-east.prod.app", map[string]string{"app": "shop"}, 10)
	got := flatten(encodeAll(t, e, bucket(t0,
		aggregate.Series{Name: "requests", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 5},
		aggregate.Series{Name: "router.service", Source: "web.1", Unit: "ms", Kind: metric.Measure,
			Count: 1, Sum: 12, Min: 12, Max: 12, Median: 12, P95: 12, P99: 12},
		aggregate.Series{Name: "memory_rss", Source: "web.1", Unit: "MB", Kind: metric.Sample, Count: 1, Last: 21.22},
	), 100))
	want := []string{
		`0 us_east_prod_app_memory_rss_bytes{app="shop",source="web.1"} 22250782.72 @1714564860000`,
		`0 us_east_prod_app_requests_total{app="shop",source="web.1"} 5 @1714564860000`,
		`0 us_east_prod_app_router_service_seconds{app="shop",quantile="0.5",source="web.1"} 0.012 @1714564860000`,
		`0 us_east_prod_app_router_service_seconds{app="shop",quantile="0.95",source="web.1"} 0.012 @1714564860000`,
		`0 us_east_prod_app_router_service_seconds{app="shop",quantile="0.99",source="web.1"} 0.012 @1714564860000`,
		`0 us_east_prod_app_router_service_seconds_count{app="shop",source="web.1"} 1 @1714564860000`,
		`0 us_east_prod_app_router_service_seconds_max{app="shop",source="web.1"} 0.012 @1714564860000`,
		`0 us_east_prod_app_router_service_seconds_min{app="shop",source="web.1"} 0.012 @1714564860000`,
		`0 us_east_prod_app_router_service_seconds_sum{app="shop",source="web.1"} 0.012 @1714564860000`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestEncodeSharedTotals: with Totals (shared state) the cumulative samples
// are the shared running sums, not this outlet's own: a worker that starts
// mid-stream continues the counter.
func TestEncodeSharedTotals(t *testing.T) {
	e := newEncoder("", nil, 100)
	tot := &aggregate.Totals{Start: t0.Add(-time.Hour), Sum: 1005, Count: 40}
	got := flatten(encodeAll(t, e, bucket(t0,
		aggregate.Series{Name: "hits", Source: "web.1", Kind: metric.Counter, Count: 2, Sum: 5, Totals: tot},
		aggregate.Series{Name: "lat", Source: "web.1", Kind: metric.Measure, Count: 2, Sum: 3, Min: 1, Max: 2, Median: 1, P95: 2, P99: 2,
			Totals: &aggregate.Totals{Start: t0, Sum: 300, Count: 21}},
		aggregate.Series{Name: "own", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 4},
	), 100))
	want := []string{
		`0 hits_total{source="web.1"} 1005 @1714564860000`,
		`0 lat{quantile="0.5",source="web.1"} 1 @1714564860000`,
		`0 lat{quantile="0.95",source="web.1"} 2 @1714564860000`,
		`0 lat{quantile="0.99",source="web.1"} 2 @1714564860000`,
		`0 lat_count{source="web.1"} 21 @1714564860000`,
		`0 lat_max{source="web.1"} 2 @1714564860000`,
		`0 lat_min{source="web.1"} 1 @1714564860000`,
		`0 lat_sum{source="web.1"} 300 @1714564860000`,
		`0 own_total{source="web.1"} 4 @1714564860000`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestEncodeCutBucketStampedNow: a bucket flushed before its end (shutdown)
// carries now, not its end, so the next worker's sample for the rest of the
// bucket (at the end) is a different timestamp.
func TestEncodeCutBucketStampedNow(t *testing.T) {
	e := newEncoder("", nil, 100)
	cut := t0.Add(25*time.Second + 123*time.Millisecond)
	e.now = func() time.Time { return cut }
	got := flatten(encodeAll(t, e, bucket(t0, aggregate.Series{Name: "hits", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 5}), 100))
	if want := fmt.Sprintf(`0 hits_total{source="web.1"} 5 @%d`, cut.UnixMilli()); len(got) != 1 || got[0] != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	e.now = func() time.Time { return t0.Add(time.Hour) } // a complete bucket: its end
	got = flatten(encodeAll(t, e, bucket(t0.Add(time.Minute), aggregate.Series{Name: "hits", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 1}), 100))
	if want := `0 hits_total{source="web.1"} 6 @1714564920000`; len(got) != 1 || got[0] != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
