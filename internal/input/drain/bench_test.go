package drain_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// benchBody is a drain body of 100 realistic lines of about 200 bytes.
func benchBody() []byte {
	lines := []string{
		"<190>1 2024-05-01T12:00:00.200000+00:00 host app web.1 - count#http.requests=1 measure#http.latency=12.5ms measure#db.query=3.2ms sample#goroutines=42 at=info path=/users",
		"<158>1 2024-05-01T12:00:00.123456+00:00 host heroku router - at=info method=GET path=\"/\" host=ex.herokuapp.com request_id=5d1a fwd=\"1.2.3.4\" dyno=web.1 connect=0ms service=12ms status=200 bytes=512 protocol=https",
		"<190>1 2024-05-01T12:00:00.300000+00:00 host app worker.2 - count#jobs.done=3 measure#jobs.duration=840ms sample#queue.depth=17 sample#mem.heap=123.5MB queue=default",
		"<45>1 2024-05-01T12:00:00.400000+00:00 host heroku web.1 - source=web.1 dyno=heroku.2808254.d97d0ea7 sample#load_avg_1m=2.46 sample#load_avg_5m=1.06 sample#load_avg_15m=0.99",
	}
	var b bytes.Buffer
	for i := range 100 {
		b.WriteString(frame(lines[i%len(lines)]))
	}
	return b.Bytes()
}

// statusWriter is the cheapest http.ResponseWriter: it keeps the status.
type statusWriter struct {
	h      http.Header
	status int
}

func (w *statusWriter) Header() http.Header         { return w.h }
func (w *statusWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *statusWriter) WriteHeader(code int)        { w.status = code }

// serveBench serves body with req until it is not refused with 503 (retried, as
// Logplex does), and fails b unless it is accepted with 204.
func serveBench(b *testing.B, h http.Handler, w *statusWriter, req *http.Request, br *bytes.Reader, body []byte) {
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
	if w.status != http.StatusNoContent {
		b.Fatalf("status %d", w.status)
	}
}

// BenchmarkServeHTTP measures the drain path without the network: ServeHTTP
// (auth, body read, de-duplication, queueing) and the asynchronous parsing of
// each 100-line body, until Close has drained the queue. A 503 is retried,
// as Logplex does.
func BenchmarkServeHTTP(b *testing.B) {
	var measurements atomic.Int64
	sink := input.SinkFunc(func(ms []metric.Measurement) { measurements.Add(int64(len(ms))) })
	p, err := input.NewProcessor(sink, input.Config{})
	if err != nil {
		b.Fatal(err)
	}
	h, err := drain.New(p, drain.Config{User: user, Password: pass})
	if err != nil {
		b.Fatal(err)
	}
	body := benchBody()
	var ids atomic.Uint64
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		br := bytes.NewReader(body)
		req, _ := http.NewRequest(http.MethodPost, "http://drain"+drain.LogsPath, nil)
		req.SetBasicAuth(user, pass)
		req.Header.Set("Content-Type", "application/logplex-1")
		req.Header.Set("Logplex-Msg-Count", "100")
		idHeader := []string{""}
		req.Header["Logplex-Frame-Id"] = idHeader
		w := &statusWriter{h: http.Header{}}
		var idBuf [32]byte
		for pb.Next() {
			idHeader[0] = string(strconv.AppendUint(idBuf[:0], ids.Add(1), 16))
			serveBench(b, h, w, req, br, body)
		}
	})
	if err := h.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)*100/b.Elapsed().Seconds(), "lines/s")
	if st := p.Stats(); st.Lines != uint64(b.N)*100 {
		b.Fatalf("parsed %d lines, want %d", st.Lines, b.N*100)
	}
}
