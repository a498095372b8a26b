package otlp

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/metric"
	logspb "go.opentelemetry.io/proto/slim/otlp/logs/v1"
)

// benchMessages are the four lines of the drain package's benchmark body, as
// syslog frames (for the Logplex path) and as bare messages (for OTLP).
var benchMessages = [][2]string{
	{"<190>1 2024-05-01T12:00:00.200000+00:00 host app web.1 - ", "count#http.requests=1 measure#http.latency=12.5ms measure#db.query=3.2ms sample#goroutines=42 at=info path=/users"},
	{"<158>1 2024-05-01T12:00:00.123456+00:00 host heroku router - ", "at=info method=GET path=\"/\" host=ex.herokuapp.com request_id=5d1a fwd=\"1.2.3.4\" dyno=web.1 connect=0ms service=12ms status=200 bytes=512 protocol=https"},
	{"<190>1 2024-05-01T12:00:00.300000+00:00 host app worker.2 - ", "count#jobs.done=3 measure#jobs.duration=840ms sample#queue.depth=17 sample#mem.heap=123.5MB queue=default"},
	{"<45>1 2024-05-01T12:00:00.400000+00:00 host heroku web.1 - ", "source=web.1 dyno=heroku.2808254.d97d0ea7 sample#load_avg_1m=2.46 sample#load_avg_5m=1.06 sample#load_avg_15m=0.99"},
}

const benchLines = 100

// statusWriter is the cheapest http.ResponseWriter: it keeps the status.
type statusWriter struct {
	h      http.Header
	status int
}

func (w *statusWriter) Header() http.Header         { return w.h }
func (w *statusWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *statusWriter) WriteHeader(code int)        { w.status = code }

// BenchmarkIngest compares, in one run, the two ways a log line enters the
// worker: a Logplex drain body of 100 lines (Cedar) and an OTLP logs request
// of the same 100 messages from one dyno (Fir), protobuf with and without
// gzip. Each op is one request through ServeHTTP (auth, read, decode,
// queue) and its asynchronous parsing, until Close drained the queue; a 503
// is retried as the senders do.
func BenchmarkIngest(b *testing.B) {
	b.Run("logplex", func(b *testing.B) {
		var body bytes.Buffer
		for i := range benchLines {
			m := benchMessages[i%len(benchMessages)]
			line := m[0] + m[1] + "\n"
			body.WriteString(strconv.Itoa(len(line)) + " " + line)
		}
		var n atomic.Int64
		p, _ := input.NewProcessor(input.SinkFunc(func(ms []metric.Measurement) { n.Add(int64(len(ms))) }), input.Config{})
		h, err := drain.New(p, drain.Config{User: testUser, Password: testPass})
		if err != nil {
			b.Fatal(err)
		}
		run(b, h, drain.LogsPath, "application/logplex-1", "", body.Bytes(), http.StatusNoContent, func(ctx context.Context) error { return h.Close(ctx) })
		if st := p.Stats(); st.Lines != uint64(b.N)*benchLines {
			b.Fatalf("parsed %d lines, want %d", st.Lines, b.N*benchLines)
		}
	})
	bodies := make([]string, benchLines)
	for i := range bodies {
		bodies[i] = benchMessages[i%len(benchMessages)][1]
	}
	pb := marshal(b, logsRequest("web-5d8f7c9b4-x2k9p", time.Now(), bodies...))
	for _, enc := range []string{"", "gzip"} {
		name := "otlp-protobuf"
		body := pb
		if enc == "gzip" {
			name, body = name+"-gzip", gz(b, pb)
		}
		b.Run(name, func(b *testing.B) {
			var n atomic.Int64
			r, err := New(Config{Sink: input.SinkFunc(func(ms []metric.Measurement) { n.Add(int64(len(ms))) }),
				User: testUser, Password: testPass, SourceAttributes: strings.Split(DefaultSourceAttributes, ","),
				Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			run(b, r, LogsPath, "application/x-protobuf", enc, body, http.StatusOK, r.Close)
			if st := r.Stats(); st.Input.Lines != uint64(b.N)*benchLines {
				b.Fatalf("parsed %d records, want %d", st.Input.Lines, b.N*benchLines)
			}
		})
	}
}

func run(b *testing.B, h http.Handler, path, ctype, enc string, body []byte, want int, closeFn func(context.Context) error) {
	var ids atomic.Uint64
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		br := bytes.NewReader(body)
		req, _ := http.NewRequest(http.MethodPost, "http://worker"+path, nil)
		req.SetBasicAuth(testUser, testPass)
		req.Header.Set("Content-Type", ctype)
		if enc != "" {
			req.Header.Set("Content-Encoding", enc)
		}
		idHeader := []string{""}
		req.Header["Logplex-Frame-Id"] = idHeader
		w := &statusWriter{h: http.Header{}}
		for pb.Next() {
			idHeader[0] = strconv.FormatUint(ids.Add(1), 16)
			for {
				br.Reset(body)
				req.Body = io.NopCloser(br)
				req.ContentLength = int64(len(body))
				w.status = 0
				h.ServeHTTP(w, req)
				if w.status != http.StatusServiceUnavailable {
					break
				}
				runtime.Gosched()
			}
			if w.status != want {
				b.Fatalf("status %d", w.status)
			}
		}
	})
	if err := closeFn(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)*benchLines/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkCountProto measures the wire walk that counts a body's messages
// before it is decoded, on the 100-record body of BenchmarkIngest.
func BenchmarkCountProto(b *testing.B) {
	bodies := make([]string, benchLines)
	for i := range bodies {
		bodies[i] = benchMessages[i%len(benchMessages)][1]
	}
	pb := marshal(b, logsRequest("web-5d8f7c9b4-x2k9p", time.Now(), bodies...))
	md := (*logspb.LogsData)(nil).ProtoReflect().Descriptor()
	b.SetBytes(int64(len(pb)))
	b.ReportAllocs()
	for b.Loop() {
		if n := countProto(pb, md, MaxMessages); n != 6+2*benchLines { // data, resource logs, resource, attribute, its value, scope logs; record and body each
			b.Fatalf("%d messages", n)
		}
	}
}
