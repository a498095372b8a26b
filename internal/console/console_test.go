package console

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
)

func testBucket() *aggregate.Bucket {
	return &aggregate.Bucket{
		Start:  time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		Period: time.Minute,
		Series: []aggregate.Series{
			{Name: "db.latency", Source: "web.1", Unit: "ms", Kind: metric.Measure, Count: 3, Sum: 12, Min: 2, Max: 6, SumSquares: 56, Last: 4, Median: 4, P95: 6, P99: 6},
			{Name: "logplex.dropped", Kind: metric.Counter, Count: 1, Sum: 15},
			{Name: "memory_rss", Source: "web.1", Unit: "MB", Kind: metric.Sample, Count: 2, Last: 21.22},
			{Name: "req", Source: "web.1", Kind: metric.Counter, Count: 12, Sum: 1200000},
		},
	}
}

func TestAppendBucket(t *testing.T) {
	tests := map[string]struct {
		prefix string
		want   string
	}{
		"no prefix": {"", `bucket=2024-05-01T12:00:00Z period=60s source=web.1 measure#db.latency count=3 sum=12 min=2 max=6 mean=4 median=4 perc95=6 perc99=6 unit=ms
bucket=2024-05-01T12:00:00Z period=60s count#logplex.dropped=15
bucket=2024-05-01T12:00:00Z period=60s source=web.1 sample#memory_rss=21.22MB
bucket=2024-05-01T12:00:00Z period=60s source=web.1 count#req=1200000
`},
		"prefix": {"us-east.prod.app", `bucket=2024-05-01T12:00:00Z period=60s source=web.1 measure#us-east.prod.app.db.latency count=3 sum=12 min=2 max=6 mean=4 median=4 perc95=6 perc99=6 unit=ms
bucket=2024-05-01T12:00:00Z period=60s count#us-east.prod.app.logplex.dropped=15
bucket=2024-05-01T12:00:00Z period=60s source=web.1 sample#us-east.prod.app.memory_rss=21.22MB
bucket=2024-05-01T12:00:00Z period=60s source=web.1 count#us-east.prod.app.req=1200000
`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := string(AppendBucket(nil, testBucket(), tc.prefix))
			if got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestAppendBucketEscapes is issue 13's eighth reproduction: a source
// "web.1\nx" injected a line into stdout. Names, sources and units that are
// not plain text are printed Go-quoted; floats have at most 12 significant
// digits (issue 12 item 8: sum=909.5000000000001).
func TestAppendBucketEscapes(t *testing.T) {
	b := &aggregate.Bucket{Start: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), Period: time.Minute, Series: []aggregate.Series{
		{Name: "a", Source: "web.1\nbucket=x count#fake=1", Kind: metric.Counter, Sum: 1},
		{Name: "b c=d", Source: "web.1", Kind: metric.Counter, Sum: 1},
		{Name: "caf\u00e9", Source: "\xff", Unit: "m\"s", Kind: metric.Sample, Last: 909.5000000000001},
		{Name: "lat", Kind: metric.Measure, Count: 3, Sum: 0.1 + 0.2, Min: 0.1, Max: 1e-7 / 3, Median: 2.0 / 3, P95: 1e15 + 0.5, P99: 10.799999999999999, Unit: "ms\r"},
	}}
	for name, tc := range map[string]struct{ prefix, want string }{
		"no prefix": {"", `bucket=2024-05-01T12:00:00Z period=60s source="web.1\nbucket=x count#fake=1" count#a=1
bucket=2024-05-01T12:00:00Z period=60s source=web.1 count#"b c=d"=1
bucket=2024-05-01T12:00:00Z period=60s source="\xff" sample#café=909.5"m\"s"
bucket=2024-05-01T12:00:00Z period=60s measure#lat count=3 sum=0.3 min=0.1 max=0.0000000333333333333 mean=0.1 median=0.666666666667 perc95=1000000000000000.5 perc99=10.8 unit="ms\r"
`},
		"prefix": {"app", `bucket=2024-05-01T12:00:00Z period=60s source="web.1\nbucket=x count#fake=1" count#app.a=1
bucket=2024-05-01T12:00:00Z period=60s source=web.1 count#"app.b c=d"=1
bucket=2024-05-01T12:00:00Z period=60s source="\xff" sample#app.café=909.5"m\"s"
bucket=2024-05-01T12:00:00Z period=60s measure#app.lat count=3 sum=0.3 min=0.1 max=0.0000000333333333333 mean=0.1 median=0.666666666667 perc95=1000000000000000.5 perc99=10.8 unit="ms\r"
`},
	} {
		t.Run(name, func(t *testing.T) {
			got := string(AppendBucket(nil, b, tc.prefix))
			if got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
			if n := strings.Count(got, "\n"); n != len(b.Series) {
				t.Errorf("%d lines for %d series", n, len(b.Series))
			}
		})
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

func TestOutletCounts(t *testing.T) {
	var buf bytes.Buffer
	o := New(&buf, "")
	o.Write(testBucket())
	o.Write(&aggregate.Bucket{Start: time.Unix(0, 0), Period: time.Minute})
	if st := o.Stats(); st.Series != 4 || st.WriteErrors != 0 {
		t.Fatalf("Stats() = %+v; want 4 series, 0 errors", st)
	}
	if lines := bytes.Count(buf.Bytes(), []byte("\n")); lines != 4 {
		t.Fatalf("printed %d lines, want 4", lines)
	}
	f := New(failWriter{}, "")
	f.Write(testBucket())
	if st := f.Stats(); st.Series != 0 || st.WriteErrors != 1 {
		t.Fatalf("failing writer: Stats() = %+v; want 0 series, 1 error", st)
	}
}

func BenchmarkAppendBucket(b *testing.B) {
	bk := testBucket()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendBucket(buf[:0], bk, "us-east.prod.app")
	}
}
