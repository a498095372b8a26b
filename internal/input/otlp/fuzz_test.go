package otlp

import (
	"net/http"
	"os"
	"testing"

	metricspb "go.opentelemetry.io/proto/slim/otlp/metrics/v1"
)

// fuzzTarget posts data to path in every format and encoding the receiver
// takes, and checks that it answers one of the specified statuses, never
// crashes, and that every measurement it hands on is well formed.
func fuzzTarget(f *testing.F, path string, seeds ...string) {
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(0))
		f.Add(b, uint8(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		r, c := newTestReceiver(t, nil)
		ctype, enc := "application/x-protobuf", ""
		if mode&1 == 1 {
			ctype = "application/json"
		}
		body := data
		if mode&2 == 2 {
			enc, body = "gzip", gz(t, data)
		}
		w := post(r, path, ctype, enc, body)
		switch w.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d", w.Code)
		}
		if err := r.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		for _, m := range c.all() {
			if m.Name == "" || m.Kind < 1 || m.Kind > 3 {
				t.Fatalf("bad measurement %+v", m)
			}
			if d := m.Dist; d != nil {
				var n uint64
				for _, b := range d.Bins {
					n += b.Count
					if b.Value < d.Min || b.Value > d.Max || !finite(b.Value) {
						t.Fatalf("bin %v outside [%v, %v]", b.Value, d.Min, d.Max)
					}
				}
				if n != d.Count || !finite(d.Sum) {
					t.Fatalf("distribution %+v: bins count %d", d, n)
				}
			}
		}
	})
}

func FuzzLogs(f *testing.F) {
	b := marshal(f, logsRequest("web-5d8f7c9b4-x2k9p", testNow, "count#req=1 measure#db=3ms", `at=info method=GET path="/" dyno=web.1 connect=0ms service=1ms status=200 bytes=1`))
	f.Add(b, uint8(0))
	f.Add(b, uint8(2))
	fuzzTarget(f, LogsPath, "testdata/heroku-logs.json")
}

func FuzzMetrics(f *testing.F) {
	f.Add(marshal(f, metricsRequest(cumSum(-1, 0, 5))), uint8(0))
	f.Add(marshal(f, &metricspb.MetricsData{}), uint8(2))
	fuzzTarget(f, MetricsPath, "testdata/heroku-metrics.json")
}
