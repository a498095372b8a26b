package input_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/inputtest"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// now is the fixed arrival time of every test.
var now = time.Date(2024, 5, 1, 12, 0, 30, 0, time.UTC)

func clock() time.Time { return now }

// frame octet-counts msg the way Logplex does: the length includes the LF.
func frame(msg string) string { return strconv.Itoa(len(msg)+1) + " " + msg + "\n" }

const (
	msgA = "<190>1 2024-05-01T12:00:00.200000+00:00 host app web.1 - count#req=1 measure#db.latency=4ms"
	msgB = "<190>1 2024-05-01T12:00:00.300000+00:00 host app web.2 - sample#queue.depth=7"
	// RFC 5424 with STRUCTURED-DATA, as a syslog drain sends it.
	msgC = `<190>1 2024-05-01T12:00:01+00:00 d.7f3a1c app worker.1 - [meta x="1"] count#jobs=3`
)

var (
	wantA = []string{
		"2024-05-01T12:00:00.2Z web.1 count req=1",
		"2024-05-01T12:00:00.2Z web.1 measure db.latency=4ms",
	}
	wantB = []string{"2024-05-01T12:00:00.3Z web.2 sample queue.depth=7"}
	wantC = []string{"2024-05-01T12:00:01Z worker.1 count jobs=3"}
)

func newProcessor(t testing.TB, cfg input.Config) (*input.Processor, *inputtest.Recorder) {
	t.Helper()
	rec := inputtest.NewRecorder()
	if cfg.Now == nil {
		cfg.Now = clock
	}
	p, err := input.NewProcessor(rec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, rec
}

func TestReadFrames(t *testing.T) {
	cases := map[string]struct {
		body  string
		want  []string
		stats input.Stats
	}{
		"drain body": {
			body:  frame(msgA) + frame(msgB),
			want:  slices.Concat(wantA, wantB),
			stats: input.Stats{Lines: 2, Measurements: 3},
		},
		"syslog stream, octet counted and newline delimited": {
			body:  frame(msgC) + msgB + "\n" + msgA + "\n",
			want:  slices.Concat(wantC, wantB, wantA),
			stats: input.Stats{Lines: 3, Measurements: 4},
		},
		"malformed frame between good frames": {
			body:  frame(msgA) + "300 <190>1 2024-05-01T12:00:00+00:00 host app web.9 - count#lost=1\n" + frame(msgB),
			want:  slices.Concat(wantA, wantB),
			stats: input.Stats{Lines: 2, Measurements: 3, MalformedFrames: 1},
		},
		"truncated last frame": {
			body:  frame(msgA) + "90 <190>1 2024-05-01T12:00:00+00:00 host app",
			want:  wantA,
			stats: input.Stats{Lines: 1, Measurements: 2, MalformedFrames: 1},
		},
		"bad syslog header": {
			body:  frame("<190>1 yesterday host app web.1 - count#x=1") + frame(msgB),
			want:  wantB,
			stats: input.Stats{Lines: 1, Measurements: 1, BadHeaders: 1},
		},
		"no timestamp: arrival time": {
			body:  frame("<190>1 - host app web.3 - count#req=5"),
			want:  []string{"2024-05-01T12:00:30Z web.3 count req=5"},
			stats: input.Stats{Lines: 1, Measurements: 1},
		},
		"rejected pair, good pair kept": {
			body:  frame("<190>1 2024-05-01T12:00:00.200000+00:00 host app web.1 - count#req=abc count#ok=2"),
			want:  []string{"2024-05-01T12:00:00.2Z web.1 count ok=2"},
			stats: input.Stats{Lines: 1, Measurements: 1, RejectedLines: 1, RejectedPairs: 1},
		},
		"line without metrics": {
			body:  frame("<190>1 2024-05-01T12:00:00.200000+00:00 host app web.1 - GET / 200"),
			stats: input.Stats{Lines: 1},
		},
		"empty": {},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, rec := newProcessor(t, input.Config{})
			if err := p.ReadFrames(context.Background(), strings.NewReader(tc.body)); err != nil {
				t.Fatalf("ReadFrames: %v", err)
			}
			if got := rec.Lines(); !slices.Equal(got, tc.want) {
				t.Errorf("measurements:\n got %q\nwant %q", got, tc.want)
			}
			got := p.Stats()
			got.SinkCalls = 0 // depends on how the reader splits the input
			if got != tc.stats {
				t.Errorf("stats:\n got %+v\nwant %+v", got, tc.stats)
			}
		})
	}
}

func TestReadLines(t *testing.T) {
	long := "count#long=1 " + strings.Repeat("x", 100)
	cases := map[string]struct {
		input  string
		format input.Format
		want   []string
		stats  input.Stats
	}{
		"any: bare, heroku logs, syslog, blank, CRLF, no final LF": {
			input: "count#req=1 measure#db.latency=4ms\n" +
				"2024-05-01T12:00:00.200000+00:00 app[web.1]: count#req=2\r\n" +
				"\n" +
				msgB + "\n" +
				"count#req=3",
			format: input.FormatAny,
			want: []string{
				"2024-05-01T12:00:30Z  count req=1",
				"2024-05-01T12:00:30Z  measure db.latency=4ms",
				"2024-05-01T12:00:00.2Z web.1 count req=2",
				wantB[0],
				"2024-05-01T12:00:30Z  count req=3",
			},
			stats: input.Stats{Lines: 4, Measurements: 5},
		},
		"any: overlong line skipped, next kept": {
			input:  long + "\n" + "count#req=1\n",
			format: input.FormatAny,
			want:   []string{"2024-05-01T12:00:30Z  count req=1"},
			stats:  input.Stats{Lines: 1, Measurements: 1, OverlongLines: 1},
		},
		"any: overlong last line without LF": {
			input:  "count#req=1\n" + long,
			format: input.FormatAny,
			want:   []string{"2024-05-01T12:00:30Z  count req=1"},
			stats:  input.Stats{Lines: 1, Measurements: 1, OverlongLines: 1},
		},
		"text: log session lines, other lines refused": {
			input: "2024-05-01T12:00:00.200000+00:00 app[web.1]: count#req=1 measure#db.latency=4ms\n" +
				"count#bare=1\n" +
				"2024-05-01T12:00:01+00:00 app[worker.1]: count#jobs=3\n",
			format: input.FormatText,
			want:   slices.Concat(wantA, wantC),
			stats:  input.Stats{Lines: 2, Measurements: 3, BadHeaders: 1},
		},
		"syslog: one message per line": {
			input:  msgA + "\n" + msgC + "\n",
			format: input.FormatSyslog,
			want:   slices.Concat(wantA, wantC),
			stats:  input.Stats{Lines: 2, Measurements: 3},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, rec := newProcessor(t, input.Config{MaxLineBytes: 100})
			if err := p.ReadLines(context.Background(), strings.NewReader(tc.input), tc.format); err != nil {
				t.Fatalf("ReadLines: %v", err)
			}
			if got := rec.Lines(); !slices.Equal(got, tc.want) {
				t.Errorf("measurements:\n got %q\nwant %q", got, tc.want)
			}
			got := p.Stats()
			got.SinkCalls = 0 // depends on how the reader splits the input
			if got != tc.stats {
				t.Errorf("stats:\n got %+v\nwant %+v", got, tc.stats)
			}
		})
	}
}

// TestMaxLineBytesBoundary checks that a line of exactly MaxLineBytes passes
// and one byte more does not.
func TestMaxLineBytesBoundary(t *testing.T) {
	const limit = 64
	exact := "count#req=1 " + strings.Repeat("x", limit-len("count#req=1 "))
	over := exact + "y"
	p, rec := newProcessor(t, input.Config{MaxLineBytes: limit})
	if err := p.ReadLines(context.Background(), strings.NewReader(exact+"\n"+over+"\n"+exact+"\r\n"), input.FormatAny); err != nil {
		t.Fatal(err)
	}
	got := p.Stats()
	got.SinkCalls = 0
	if want := (input.Stats{Lines: 2, Measurements: 2, OverlongLines: 1}); got != want {
		t.Errorf("stats: got %+v, want %+v", got, want)
	}
	if rec.Len() != 2 {
		t.Errorf("got %d measurements, want 2", rec.Len())
	}
	// Frames: the bound applies to the length in the prefix (LF included).
	head := "<190>1 2024-05-01T12:00:00Z host app web.1 - count#req=1 "
	fits := head + strings.Repeat("x", limit-1-len(head)) // + LF = limit
	p, rec = newProcessor(t, input.Config{MaxLineBytes: limit})
	body := frame(fits) + frame(fits+"y") + frame(fits)
	if err := p.ReadFrames(context.Background(), strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if got := p.Stats(); got.MalformedFrames != 1 || got.Lines != 2 || rec.Len() != 2 {
		t.Errorf("frames stats: got %+v, want 2 lines and 1 malformed frame", got)
	}
}

// TestSinkBatch checks that a large body reaches the Sink in batches of
// SinkBatch measurements.
func TestSinkBatch(t *testing.T) {
	var sizes []int
	p, err := input.NewProcessor(input.SinkFunc(func(ms []metric.Measurement) { sizes = append(sizes, len(ms)) }), input.Config{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	var body strings.Builder
	for range input.SinkBatch + 76 {
		body.WriteString(frame(msgB))
	}
	s := p.Session()
	if n := s.Frames([]byte(body.String())); n != input.SinkBatch+76 {
		t.Errorf("Frames = %d, want %d", n, input.SinkBatch+76)
	}
	s.Release()
	if want := []int{input.SinkBatch, 76}; !slices.Equal(sizes, want) {
		t.Errorf("Sink.Add sizes = %v, want %v", sizes, want)
	}
	if got := p.Stats(); got.SinkCalls != 2 || got.Measurements != input.SinkBatch+76 {
		t.Errorf("stats = %+v", got)
	}
}

// TestFlushBeforeBlockingRead checks that measurements reach the Sink while
// the stream is still open and idle.
func TestFlushBeforeBlockingRead(t *testing.T) {
	for name, read := range map[string]func(*input.Processor, io.Reader) error{
		"frames": func(p *input.Processor, r io.Reader) error { return p.ReadFrames(context.Background(), r) },
		"lines": func(p *input.Processor, r io.Reader) error {
			return p.ReadLines(context.Background(), r, input.FormatAny)
		},
	} {
		t.Run(name, func(t *testing.T) {
			p, rec := newProcessor(t, input.Config{})
			pr, pw := io.Pipe()
			done := make(chan error, 1)
			go func() { done <- read(p, pr) }()
			// Newline-delimited, so the Scanner needs no look-ahead.
			if _, err := io.WriteString(pw, msgA+"\n"); err != nil {
				t.Fatal(err)
			}
			if !rec.WaitLen(2, 5*time.Second) {
				t.Fatalf("measurements did not reach the sink while the stream was idle: %q", rec.Lines())
			}
			pw.Close()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := rec.Lines(); !slices.Equal(got, wantA) {
				t.Errorf("got %q, want %q", got, wantA)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	boom := errors.New("boom")
	p, rec := newProcessor(t, input.Config{})
	r := io.MultiReader(strings.NewReader(msgA+"\n"), iotestErrReader{boom})
	if err := p.ReadLines(context.Background(), r, input.FormatAny); !errors.Is(err, boom) {
		t.Fatalf("ReadLines error = %v, want boom", err)
	}
	if got := p.Stats(); got.BrokenStreams != 1 || got.Lines != 1 {
		t.Errorf("stats = %+v, want 1 line and 1 broken stream", got)
	}
	if rec.Len() != 2 {
		t.Errorf("got %d measurements, want 2 (kept before the error)", rec.Len())
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.ReadFrames(ctx, strings.NewReader(frame(msgA))); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadFrames with cancelled ctx = %v, want context.Canceled", err)
	}
	if got := p.Stats().BrokenStreams; got != 1 {
		t.Errorf("cancellation counted as broken stream: %d", got)
	}
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

// TestConcurrent hammers one Processor from several goroutines; run with -race.
func TestConcurrent(t *testing.T) {
	p, rec := newProcessor(t, input.Config{})
	body := strings.Repeat(frame(msgA)+frame(msgB), 50)
	const goroutines, rounds = 8, 20
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range rounds {
				if err := p.ReadFrames(context.Background(), strings.NewReader(body)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	want := goroutines * rounds * 50 * 3
	if rec.Len() != want {
		t.Errorf("got %d measurements, want %d", rec.Len(), want)
	}
	if got := p.Stats(); got.Lines != uint64(want/3*2) || got.Measurements != uint64(want) {
		t.Errorf("stats = %+v", got)
	}
}

func TestNewProcessorErrors(t *testing.T) {
	if _, err := input.NewProcessor(nil, input.Config{}); err == nil {
		t.Error("nil sink accepted")
	}
	if _, err := input.NewProcessor(inputtest.NewRecorder(), input.Config{MaxLineBytes: -1}); err == nil {
		t.Error("negative MaxLineBytes accepted")
	}
	p, _ := newProcessor(t, input.Config{})
	if p.MaxLineBytes() != input.DefaultMaxLineBytes {
		t.Errorf("MaxLineBytes = %d", p.MaxLineBytes())
	}
}

// body100 is a drain body of 100 realistic lines.
func body100() []byte {
	var b bytes.Buffer
	lines := []string{
		"<190>1 2024-05-01T12:00:00.200000+00:00 host app web.1 - count#http.requests=1 measure#http.latency=12.5ms measure#db.query=3.2ms sample#goroutines=42 at=info path=/users",
		"<158>1 2024-05-01T12:00:00.123456+00:00 host heroku router - at=info method=GET path=\"/\" host=ex.herokuapp.com request_id=5d1a fwd=\"1.2.3.4\" dyno=web.1 connect=0ms service=12ms status=200 bytes=512 protocol=https",
		"<190>1 2024-05-01T12:00:00.300000+00:00 host app worker.2 - count#jobs.done=3 measure#jobs.duration=840ms sample#queue.depth=17 sample#mem.heap=123.5MB queue=default",
		"<45>1 2024-05-01T12:00:00.400000+00:00 host heroku web.1 - source=web.1 dyno=heroku.2808254.d97d0ea7 sample#load_avg_1m=2.46 sample#load_avg_5m=1.06 sample#load_avg_15m=0.99",
	}
	for i := range 100 {
		b.WriteString(frame(lines[i%len(lines)]))
	}
	return b.Bytes()
}

func BenchmarkSessionFrames(b *testing.B) {
	p, err := input.NewProcessor(input.SinkFunc(func([]metric.Measurement) {}), input.Config{})
	if err != nil {
		b.Fatal(err)
	}
	body := body100()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		s := p.Session()
		defer s.Release()
		for pb.Next() {
			s.Frames(body)
			s.Flush()
		}
	})
	b.ReportMetric(float64(b.N)*100/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkReadFrames is the syslog stream path: a reader, the flushing
// wrapper and the Scanner's own buffering.
func BenchmarkReadFrames(b *testing.B) {
	p, err := input.NewProcessor(input.SinkFunc(func([]metric.Measurement) {}), input.Config{})
	if err != nil {
		b.Fatal(err)
	}
	body := body100()
	var r bytes.Reader
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(body)
		if err := p.ReadFrames(context.Background(), &r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*100/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkReadLines is the log-session and stdin path: `heroku logs` text
// lines.
func BenchmarkReadLines(b *testing.B) {
	p, err := input.NewProcessor(input.SinkFunc(func([]metric.Measurement) {}), input.Config{})
	if err != nil {
		b.Fatal(err)
	}
	var text bytes.Buffer
	for range 25 {
		text.WriteString("2024-05-01T12:00:00.200000+00:00 app[web.1]: count#http.requests=1 measure#http.latency=12.5ms measure#db.query=3.2ms sample#goroutines=42 at=info path=/users\n")
		text.WriteString("2024-05-01T12:00:00.123456+00:00 heroku[router]: at=info method=GET path=\"/\" host=ex.herokuapp.com request_id=5d1a fwd=\"1.2.3.4\" dyno=web.1 connect=0ms service=12ms status=200 bytes=512 protocol=https\n")
		text.WriteString("2024-05-01T12:00:00.300000+00:00 app[worker.2]: count#jobs.done=3 measure#jobs.duration=840ms sample#queue.depth=17 sample#mem.heap=123.5MB queue=default\n")
		text.WriteString("2024-05-01T12:00:00.400000+00:00 heroku[web.1]: source=web.1 dyno=heroku.2808254.d97d0ea7 sample#load_avg_1m=2.46 sample#load_avg_5m=1.06 sample#load_avg_15m=0.99\n")
	}
	body := text.Bytes()
	var r bytes.Reader
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(body)
		if err := p.ReadLines(context.Background(), &r, input.FormatText); err != nil {
			b.Fatal(err)
		}
	}
	if st := p.Stats(); st.BadHeaders != 0 || st.Lines == 0 {
		b.Fatalf("stats %+v", st)
	}
	b.ReportMetric(float64(b.N)*100/b.Elapsed().Seconds(), "lines/s")
}
