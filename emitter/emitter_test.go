package emitter

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/testproc"
	metrics "github.com/rcrowley/go-metrics"
)

// newTest returns an Emitter over r writing nowhere by default.
func newTest(t testing.TB, cfg Config) *Emitter {
	t.Helper()
	if cfg.Registry == nil {
		cfg.Registry = metrics.NewRegistry()
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// emit returns the output of one emission.
func emit(t testing.TB, e *Emitter) string {
	t.Helper()
	var b bytes.Buffer
	if _, err := e.WriteTo(&b); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	return b.String()
}

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

func TestWriteToMetricTypes(t *testing.T) {
	tests := map[string]struct {
		setup   func(r metrics.Registry)
		between func(r metrics.Registry) // before the second emission
		first   string
		second  string
	}{
		"counter": {
			setup: func(r metrics.Registry) { metrics.GetOrRegisterCounter("req", r).Inc(3) },
			between: func(r metrics.Registry) {
				c := metrics.GetOrRegisterCounter("req", r)
				c.Inc(5)
				c.Dec(1)
			},
			first:  "at=metrics count#req=3\n",
			second: "at=metrics count#req=4\n",
		},
		"counter decremented below the last value": {
			setup:   func(r metrics.Registry) { metrics.GetOrRegisterCounter("inflight", r).Inc(3) },
			between: func(r metrics.Registry) { metrics.GetOrRegisterCounter("inflight", r).Dec(5) },
			first:   "at=metrics count#inflight=3\n",
			second:  "at=metrics count#inflight=-5\n",
		},
		"gauge": {
			setup:   func(r metrics.Registry) { metrics.GetOrRegisterGauge("queue", r).Update(-7) },
			between: func(r metrics.Registry) {},
			first:   "at=metrics sample#queue=-7\n",
			second:  "at=metrics sample#queue=-7\n",
		},
		"gauge float64 never in exponent form": {
			setup: func(r metrics.Registry) {
				metrics.GetOrRegisterGaugeFloat64("big", r).Update(1e21)
				metrics.GetOrRegisterGaugeFloat64("small", r).Update(0.000001)
				metrics.GetOrRegisterGaugeFloat64("ratio", r).Update(0.25)
			},
			between: func(r metrics.Registry) { metrics.GetOrRegisterGaugeFloat64("ratio", r).Update(2) },
			first:   "at=metrics sample#big=1000000000000000000000 sample#ratio=0.25 sample#small=0.000001\n",
			second:  "at=metrics sample#big=1000000000000000000000 sample#ratio=2 sample#small=0.000001\n",
		},
		"functional gauges": {
			setup: func(r metrics.Registry) {
				metrics.NewRegisteredFunctionalGauge("fi", r, func() int64 { return 42 })
				metrics.NewRegisteredFunctionalGaugeFloat64("ff", r, func() float64 { return 1.5 })
			},
			between: func(r metrics.Registry) {},
			first:   "at=metrics sample#ff=1.5 sample#fi=42\n",
			second:  "at=metrics sample#ff=1.5 sample#fi=42\n",
		},
		"non-finite gauge skipped": {
			setup: func(r metrics.Registry) {
				metrics.GetOrRegisterGaugeFloat64("nan", r).Update(math.NaN())
				metrics.GetOrRegisterGaugeFloat64("ok", r).Update(1)
			},
			between: func(r metrics.Registry) {},
			first:   "at=metrics sample#ok=1\n",
			second:  "at=metrics sample#ok=1\n",
		},
		"meter": {
			setup:   func(r metrics.Registry) { metrics.GetOrRegisterMeter("events", r).Mark(10) },
			between: func(r metrics.Registry) { metrics.GetOrRegisterMeter("events", r).Mark(2) },
			first:   "at=metrics count#events=10\n",
			second:  "at=metrics count#events=2\n",
		},
		"timer per interval in ms": {
			setup: func(r metrics.Registry) {
				tm := GetOrRegisterTimer("db.query", r)
				for _, d := range []float64{4, 1, 2, 3, 12.5} {
					tm.Update(ms(d))
				}
			},
			between: func(r metrics.Registry) { GetOrRegisterTimer("db.query", r).Update(ms(100)) },
			first:   "at=metrics count#db.query.count=5 sample#db.query.min=1ms sample#db.query.mean=4.5ms sample#db.query.median=3ms sample#db.query.perc95=10.8ms sample#db.query.perc99=12.16ms sample#db.query.max=12.5ms\n",
			second:  "at=metrics count#db.query.count=1 sample#db.query.min=100ms sample#db.query.mean=100ms sample#db.query.median=100ms sample#db.query.perc95=100ms sample#db.query.perc99=100ms sample#db.query.max=100ms\n",
		},
		"idle timer prints only its count": {
			setup:   func(r metrics.Registry) { GetOrRegisterTimer("idle", r) },
			between: func(r metrics.Registry) {},
			first:   "at=metrics count#idle.count=0\n",
			second:  "at=metrics count#idle.count=0\n",
		},
		"histogram per interval": {
			setup: func(r metrics.Registry) {
				h := GetOrRegisterHistogram("size", r)
				for i := int64(1); i <= 10; i++ {
					h.Update(i * 10)
				}
			},
			between: func(r metrics.Registry) { GetOrRegisterHistogram("size", r).Update(7) },
			first:   "at=metrics count#size.count=10 sample#size.min=10 sample#size.mean=55 sample#size.median=55 sample#size.perc95=95.5 sample#size.perc99=99.1 sample#size.max=100\n",
			second:  "at=metrics count#size.count=1 sample#size.min=7 sample#size.mean=7 sample#size.median=7 sample#size.perc95=7 sample#size.perc99=7 sample#size.max=7\n",
		},
		"plain go-metrics timer": {
			setup: func(r metrics.Registry) {
				tm := metrics.NewCustomTimer(metrics.NewHistogram(metrics.NewUniformSample(100)), metrics.NewMeter())
				r.Register("plain", tm)
				tm.Update(ms(2))
				tm.Update(ms(4))
			},
			between: func(r metrics.Registry) {},
			// go-metrics' own percentile: position p*(n+1), so 0.5 of 2 values is their mean.
			first:  "at=metrics count#plain.count=2 sample#plain.min=2ms sample#plain.mean=3ms sample#plain.median=3ms sample#plain.perc95=4ms sample#plain.perc99=4ms sample#plain.max=4ms\n",
			second: "at=metrics count#plain.count=0\n",
		},
		"plain go-metrics histogram": {
			setup: func(r metrics.Registry) {
				h := metrics.GetOrRegisterHistogram("ph", r, metrics.NewUniformSample(100))
				h.Update(5)
			},
			between: func(r metrics.Registry) { metrics.GetOrRegisterHistogram("ph", r, nil).Update(9) },
			// The sample is not per-interval: the second emission still sees 5.
			first:  "at=metrics count#ph.count=1 sample#ph.min=5 sample#ph.mean=5 sample#ph.median=5 sample#ph.perc95=5 sample#ph.perc99=5 sample#ph.max=5\n",
			second: "at=metrics count#ph.count=1 sample#ph.min=5 sample#ph.mean=7 sample#ph.median=7 sample#ph.perc95=9 sample#ph.perc99=9 sample#ph.max=9\n",
		},
		"set": {
			setup: func(r metrics.Registry) {
				s := NewSet()
				r.Register("users", s)
				s.Add("alice")
				s.Add("bob")
				s.Add("alice")
			},
			between: func(r metrics.Registry) { r.Get("users").(*Set).Add("carol") },
			first:   "at=metrics count#users=2\n",
			second:  "at=metrics count#users=1\n",
		},
		"healthchecks print nothing": {
			setup: func(r metrics.Registry) {
				r.Register("hc", metrics.NewHealthcheck(func(metrics.Healthcheck) {}))
			},
			between: func(r metrics.Registry) {},
			first:   "",
			second:  "",
		},
		"sorted by printed name": {
			setup: func(r metrics.Registry) {
				metrics.GetOrRegisterCounter("b", r).Inc(1)
				metrics.GetOrRegisterCounter("a.z", r).Inc(1)
				metrics.GetOrRegisterGauge("a", r).Update(1)
				metrics.GetOrRegisterCounter("A", r).Inc(1)
			},
			between: func(r metrics.Registry) {},
			first:   "at=metrics count#A=1 sample#a=1 count#a.z=1 count#b=1\n",
			second:  "at=metrics count#A=0 sample#a=1 count#a.z=0 count#b=0\n",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := metrics.NewRegistry()
			tc.setup(r)
			e := newTest(t, Config{Registry: r})
			if got := emit(t, e); got != tc.first {
				t.Errorf("first emission:\n got %q\nwant %q", got, tc.first)
			}
			tc.between(r)
			if got := emit(t, e); got != tc.second {
				t.Errorf("second emission:\n got %q\nwant %q", got, tc.second)
			}
		})
	}
}

func TestNonFiniteCounted(t *testing.T) {
	r := metrics.NewRegistry()
	metrics.GetOrRegisterGaugeFloat64("inf", r).Update(math.Inf(1))
	e := newTest(t, Config{Registry: r})
	emit(t, e)
	emit(t, e)
	if got := e.Stats().NonFinite; got != 2 {
		t.Errorf("NonFinite = %d, want 2", got)
	}
}

func TestPrefixAndSource(t *testing.T) {
	tests := map[string]struct {
		prefix, source string
		want           string
	}{
		"none":               {"", "", "at=metrics count#req=1\n"},
		"prefix":             {"myapp", "", "at=metrics count#myapp.req=1\n"},
		"prefix ending in .": {"us-east.prod.", "", "at=metrics count#us-east.prod.req=1\n"},
		"source":             {"", "web.1", "at=metrics source=web.1 count#req=1\n"},
		"both":               {"app", "worker-2", "at=metrics source=worker-2 count#app.req=1\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := metrics.NewRegistry()
			metrics.GetOrRegisterCounter("req", r).Inc(1)
			e := newTest(t, Config{Registry: r, Prefix: tc.prefix, Source: tc.source})
			if got := emit(t, e); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSanitizeName(t *testing.T) {
	tests := map[string]struct {
		prefix, name, want string
	}{
		"allowed kept":       {"", "Az09.:_-", "Az09.:_-"},
		"space and hash":     {"", "http req#1", "http_req_1"},
		"equals and slash":   {"", "a=b/c", "a_b_c"},
		"utf-8 bytes":        {"", "café", "caf__"},
		"prefix joined":      {"app", "x", "app.x"},
		"prefix ends in dot": {"app.", "x", "app.x"},
		"empty name":         {"app", "", "app."},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := SanitizeName(tc.prefix, tc.name); got != tc.want {
				t.Errorf("SanitizeName(%q, %q) = %q, want %q", tc.prefix, tc.name, got, tc.want)
			}
		})
	}
}

func TestLongNamesTruncatedKeepingSuffix(t *testing.T) {
	r := metrics.NewRegistry()
	long := strings.Repeat("x", 300)
	metrics.GetOrRegisterCounter(long, r).Inc(1)
	GetOrRegisterTimer("t"+long, r).Update(time.Millisecond)
	e := newTest(t, Config{Registry: r, Prefix: "p"})
	out := emit(t, e)
	x253 := strings.Repeat("x", 253)
	want := "count#p." + x253 + "=1"
	if !strings.Contains(out, " "+want+" ") && !strings.Contains(out, " "+want+"\n") {
		t.Errorf("counter pair %q missing in\n%s", want, out)
	}
	for _, s := range []string{".count=1", ".min=1ms", ".mean=1ms", ".median=1ms", ".perc95=1ms", ".perc99=1ms", ".max=1ms"} {
		name := "p.t" + strings.Repeat("x", MaxNameLen-len("p.t")-(strings.Index(s, "=")))
		if !strings.Contains(out, "#"+name+s) {
			t.Errorf("timer pair %q missing in\n%s", name+s, out)
		}
	}
	for _, f := range strings.Fields(out) {
		if k, _, ok := strings.Cut(f, "="); ok && strings.Contains(k, "#") {
			if _, n, _ := strings.Cut(k, "#"); len(n) > MaxNameLen {
				t.Errorf("name of %d bytes: %s", len(n), n)
			}
		}
	}
}

func TestEmptyNameSkipped(t *testing.T) {
	r := metrics.NewRegistry()
	metrics.GetOrRegisterCounter("", r).Inc(1)
	metrics.GetOrRegisterCounter("ok", r).Inc(1)
	e := newTest(t, Config{Registry: r})
	if got, want := emit(t, e), "at=metrics count#ok=1\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	emit(t, e)
	if got := e.Stats().SkippedNames; got != 1 {
		t.Errorf("SkippedNames = %d, want 1 (counted once while registered)", got)
	}
}

// writeRecorder records the size of each Write.
type writeRecorder struct {
	bytes.Buffer
	sizes []int
}

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.sizes = append(w.sizes, len(p))
	return w.Buffer.Write(p)
}

func TestLineSplitting(t *testing.T) {
	r := metrics.NewRegistry()
	for i := range 200 {
		metrics.GetOrRegisterCounter("app.requests.route_"+pad3(i), r).Inc(int64(i))
	}
	e := newTest(t, Config{Registry: r, Source: "web.1"})
	var w writeRecorder
	n, err := e.WriteTo(&w)
	if err != nil {
		t.Fatal(err)
	}
	out := w.String()
	if n != int64(len(out)) {
		t.Errorf("WriteTo returned %d, wrote %d bytes", n, len(out))
	}
	golden(t, "split.golden", out)

	lines := strings.SplitAfter(out, "\n")
	lines = lines[:len(lines)-1]
	pairs := 0
	for i, l := range lines {
		if len(l) > DefaultMaxLineBytes {
			t.Errorf("line %d is %d bytes, over %d", i, len(l), DefaultMaxLineBytes)
		}
		if !strings.HasPrefix(l, "at=metrics source=web.1 count#") || !strings.HasSuffix(l, "\n") {
			t.Errorf("line %d malformed: %q", i, l)
		}
		pairs += strings.Count(l, "count#")
	}
	if pairs != 200 {
		t.Errorf("%d pairs, want 200", pairs)
	}
	if got := e.Stats().Lines; got != uint64(len(lines)) {
		t.Errorf("Stats.Lines = %d, want %d", got, len(lines))
	}
	// Writes hold whole lines and at most PipeBuf bytes.
	total := 0
	for _, s := range w.sizes {
		if s > PipeBuf {
			t.Errorf("write of %d bytes, over PipeBuf", s)
		}
		total += s
		if out[total-1] != '\n' {
			t.Errorf("write ends mid-line at byte %d", total)
		}
	}
	if len(w.sizes) < 2 {
		t.Errorf("%d writes for %d bytes, want chunks", len(w.sizes), len(out))
	}
}

func TestMaxLineBytesRespected(t *testing.T) {
	r := metrics.NewRegistry()
	for _, max := range []int{MinMaxLineBytes, 4000, MaxMaxLineBytes} {
		for i := range 300 {
			tm := GetOrRegisterTimer("svc.endpoint_"+pad3(i)+".latency", r)
			tm.Update(time.Duration(i) * 1234567)
		}
		e := newTest(t, Config{Registry: r, MaxLineBytes: max})
		out := emit(t, e)
		for i, l := range strings.SplitAfter(out, "\n") {
			if len(l) > max {
				t.Errorf("max %d: line %d is %d bytes", max, i, len(l))
			}
		}
		if got := strings.Count(out, "sample#"); got != 300*6 {
			t.Errorf("max %d: %d sample pairs, want %d", max, got, 300*6)
		}
	}
}

func pad3(i int) string {
	s := "00" + itoa(i)
	return s[len(s)-3:]
}

func itoa(i int) string { return string(AppendValue(nil, float64(i))) }

// golden compares got with testdata/name; -update rewrites it.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n got %q\nwant %q", path, got, want)
	}
}

func TestRegistryChanges(t *testing.T) {
	r := metrics.NewRegistry()
	c := metrics.GetOrRegisterCounter("a", r)
	c.Inc(5)
	e := newTest(t, Config{Registry: r})
	if got, want := emit(t, e), "at=metrics count#a=5\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	metrics.GetOrRegisterCounter("b", r).Inc(1)
	if got, want := emit(t, e), "at=metrics count#a=0 count#b=1\n"; got != want {
		t.Errorf("after adding b: got %q, want %q", got, want)
	}
	r.Unregister("a")
	if got, want := emit(t, e), "at=metrics count#b=0\n"; got != want {
		t.Errorf("after removing a: got %q, want %q", got, want)
	}
	// A new counter under an old name starts from zero, not from the old one's count.
	c2 := metrics.NewCounter()
	c2.Inc(2)
	r.Register("a", c2)
	if got, want := emit(t, e), "at=metrics count#a=2 count#b=0\n"; got != want {
		t.Errorf("after re-adding a: got %q, want %q", got, want)
	}
}

// TestConcurrentUpdatesLoseNothing hammers counters, meters and timers while
// emitting, and checks that the printed counts add up to the totals.
func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	r := metrics.NewRegistry()
	c := metrics.GetOrRegisterCounter("c", r)
	m := metrics.GetOrRegisterMeter("m", r)
	tm := GetOrRegisterTimer("t", r)
	s := NewSet()
	r.Register("s", s)
	e := newTest(t, Config{Registry: r})

	const workers, perWorker = 4, 20000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				c.Inc(1)
				m.Mark(1)
				if i%10 == 0 {
					tm.Update(time.Duration(i))
					s.Add(itoa(w*perWorker + i))
				}
			}
		})
	}
	sums := map[string]int64{}
	collect := func(out string) {
		for _, f := range strings.Fields(out) {
			k, v, ok := strings.Cut(f, "=")
			if !ok || !strings.HasPrefix(k, "count#") {
				continue
			}
			n, err := parseInt(v)
			if err != nil {
				t.Fatalf("bad count %q", f)
			}
			sums[k] += n
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	emissions := 0
loop:
	for {
		select {
		case <-done:
			break loop
		default:
			collect(emit(t, e))
			emissions++
		}
	}
	collect(emit(t, e))
	want := map[string]int64{
		"count#c":       workers * perWorker,
		"count#m":       workers * perWorker,
		"count#t.count": workers * perWorker / 10,
		"count#s":       workers * perWorker / 10,
	}
	for k, w := range want {
		if sums[k] != w {
			t.Errorf("%s summed to %d over %d emissions, want %d", k, sums[k], emissions+1, w)
		}
	}
	if emissions < 2 {
		t.Logf("only %d emissions raced with the updates", emissions)
	}
}

func parseInt(s string) (int64, error) {
	v, ok := parseNumber([]byte(s))
	if !ok || v != math.Trunc(v) {
		return 0, errors.New("not an integer")
	}
	return int64(v), nil
}

func TestReservoirBound(t *testing.T) {
	r := metrics.NewRegistry()
	tm := GetOrRegisterTimer("t", r)
	const n = 5000
	for i := 1; i <= n; i++ {
		tm.Update(time.Duration(i) * time.Millisecond)
	}
	e := newTest(t, Config{Registry: r})
	out := emit(t, e)
	for _, want := range []string{"count#t.count=5000 ", "sample#t.min=1ms ", "sample#t.mean=2500.5ms ", "sample#t.max=5000ms\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing exact %q in %q", want, out)
		}
	}
	if got, want := e.Stats().ReservoirReplaced, uint64(n-DefaultSampleSize); got != want {
		t.Errorf("ReservoirReplaced = %d, want %d", got, want)
	}
	if got := tm.(*Timer).Sample().Size(); got != 0 {
		t.Errorf("reservoir holds %d values after emission, want 0", got)
	}
}

// errWriter fails every write.
type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteError(t *testing.T) {
	r := metrics.NewRegistry()
	metrics.GetOrRegisterCounter("a", r).Inc(1)
	e := newTest(t, Config{Registry: r, Writer: errWriter{}})
	err := e.Flush()
	if err == nil || err.Error() != "emitter: write: disk full" {
		t.Fatalf("Flush error = %v, want emitter: write: disk full", err)
	}
	if st := e.Stats(); st.WriteErrors != 1 || st.Emissions != 1 || st.Lines != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// manualTicker lets a test drive Run.
type manualTicker struct {
	c       chan time.Time
	stopped chan struct{}
	d       time.Duration
}

func newManualTicker() *manualTicker {
	return &manualTicker{c: make(chan time.Time), stopped: make(chan struct{})}
}

func (m *manualTicker) new(d time.Duration) (<-chan time.Time, func()) {
	m.d = d
	return m.c, func() { close(m.stopped) }
}

func TestRunTicksAndFinalFlush(t *testing.T) {
	r := metrics.NewRegistry()
	c := metrics.GetOrRegisterCounter("req", r)
	tk := newManualTicker()
	var out testproc.LimitedBuffer
	e := newTest(t, Config{Registry: r, Writer: &out, Interval: 10 * time.Second, NewTicker: tk.new})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- e.Run(ctx) }()

	c.Inc(2)
	tk.c <- time.Time{} // first emission
	c.Inc(3)
	tk.c <- time.Time{} // blocks until the first emission is done; second emission
	c.Inc(4)
	// Wait for the second emission before counting again.
	for e.Stats().Emissions < 2 {
		time.Sleep(time.Millisecond)
	}
	c.Inc(1)
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	<-tk.stopped
	if tk.d != 10*time.Second {
		t.Errorf("ticker interval %v, want 10s", tk.d)
	}
	want := "at=metrics count#req=2\nat=metrics count#req=7\nat=metrics count#req=1\n"
	if got := out.String(); got != want {
		// The counter increments between ticks race with emissions by design;
		// only the total is fixed.
		if total := sumCounts(got); total != 10 || strings.Count(got, "\n") != 3 {
			t.Errorf("got %q (total %d), want 3 lines totalling 10, e.g. %q", got, total, want)
		}
	}
}

func sumCounts(out string) int64 {
	var s int64
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, "count#req="); ok {
			n, _ := parseInt(v)
			s += n
		}
	}
	return s
}

func TestRunCancelledContextEmitsOnce(t *testing.T) {
	r := metrics.NewRegistry()
	metrics.GetOrRegisterCounter("req", r).Inc(9)
	var out bytes.Buffer
	tk := newManualTicker()
	e := newTest(t, Config{Registry: r, Writer: &out, NewTicker: tk.new})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := out.String(), "at=metrics count#req=9\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if tk.d != DefaultInterval {
		t.Errorf("default interval %v, want %v", tk.d, DefaultInterval)
	}
	if err := e.Run(ctx); err == nil {
		t.Error("second Run returned nil, want an error")
	}
}

func TestRunReturnsFinalWriteError(t *testing.T) {
	r := metrics.NewRegistry()
	metrics.GetOrRegisterCounter("req", r).Inc(1)
	tk := newManualTicker()
	e := newTest(t, Config{Registry: r, Writer: errWriter{}, NewTicker: tk.new})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Run(ctx); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Run = %v, want the write error", err)
	}
}

func TestNewErrors(t *testing.T) {
	r := metrics.NewRegistry()
	tests := map[string]struct {
		cfg  Config
		want string
	}{
		"no registry":     {Config{}, "emitter: invalid configuration: Registry is nil"},
		"short interval":  {Config{Registry: r, Interval: 500 * time.Millisecond}, "emitter: invalid configuration: Interval: 500ms is shorter than the minimum 1s"},
		"bad prefix":      {Config{Registry: r, Prefix: "my app"}, `emitter: invalid configuration: Prefix: "my app" has ' ' at byte 2; only A-Z a-z 0-9 . : _ - are allowed`},
		"long prefix":     {Config{Registry: r, Prefix: strings.Repeat("p", 129)}, "emitter: invalid configuration: Prefix: 129 bytes is longer than 128"},
		"bad source":      {Config{Registry: r, Source: "web 1"}, `emitter: invalid configuration: Source: "web 1" has ' ' at byte 3; only A-Z a-z 0-9 . : _ - are allowed`},
		"reserved source": {Config{Registry: r, Source: "all"}, `emitter: invalid configuration: Source: "all" is reserved by Librato`},
		"small line":      {Config{Registry: r, MaxLineBytes: 100}, "emitter: invalid configuration: MaxLineBytes 100 is outside [1024, 9000]"},
		"huge line":       {Config{Registry: r, MaxLineBytes: 10000}, "emitter: invalid configuration: MaxLineBytes 10000 is outside [1024, 9000]"},
		"bad statsd addr": {Config{Registry: r, StatsdAddr: "127.0.0.1:notaport"}, `emitter: statsd listener on "127.0.0.1:notaport": listen udp: lookup udp/notaport: unknown port`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e, err := New(tc.cfg)
			if err == nil {
				e.Close()
				t.Fatalf("New succeeded, want %q", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %q\nwant %q", err.Error(), tc.want)
			}
			if !strings.Contains(name, "statsd") && !errors.Is(err, ErrConfig) {
				t.Errorf("error does not wrap ErrConfig")
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	tests := map[string]struct {
		env  map[string]string
		want Config
		err  string
	}{
		"defaults": {
			env:  map[string]string{},
			want: Config{Interval: 60 * time.Second},
		},
		"all set": {
			env: map[string]string{"EMITTER_INTERVAL": "5s", "EMITTER_PREFIX": "app", "EMITTER_SOURCE": "web.1",
				"EMITTER_STATSD_ADDR": "127.0.0.1:8125", "EMITTER_RUNTIME": "true"},
			want: Config{Interval: 5 * time.Second, Prefix: "app", Source: "web.1", StatsdAddr: "127.0.0.1:8125", Runtime: true},
		},
		"bad interval": {
			env: map[string]string{"EMITTER_INTERVAL": "soon"},
			err: `emitter: invalid configuration: EMITTER_INTERVAL="soon" is not a valid time.Duration: time: invalid duration "soon"`,
		},
		"short interval": {
			env: map[string]string{"EMITTER_INTERVAL": "10ms"},
			err: "emitter: invalid configuration: EMITTER_INTERVAL=10ms: 10ms is shorter than the minimum 1s",
		},
		"follows the worker's resolution": {
			env:  map[string]string{"METRICS_RESOLUTION": "10s"},
			want: Config{Interval: 10 * time.Second},
		},
		"a multiple of the resolution": {
			env:  map[string]string{"METRICS_RESOLUTION": "10s", "EMITTER_INTERVAL": "1m"},
			want: Config{Interval: time.Minute},
		},
		"shorter than the resolution": {
			env: map[string]string{"METRICS_RESOLUTION": "10s", "EMITTER_INTERVAL": "5s"},
			err: "emitter: invalid configuration: EMITTER_INTERVAL=5s does not suit METRICS_RESOLUTION=10s: timer statistics " +
				"cover one emission interval and the worker keeps the last per bucket; want EMITTER_INTERVAL=10s or a " +
				"multiple of it, or leave EMITTER_INTERVAL unset to follow METRICS_RESOLUTION",
		},
		"not a multiple of the resolution": {
			env: map[string]string{"METRICS_RESOLUTION": "1m", "EMITTER_INTERVAL": "90s"},
			err: "emitter: invalid configuration: EMITTER_INTERVAL=1m30s does not suit METRICS_RESOLUTION=1m0s",
		},
		"invalid resolution is the worker's to report": {
			env:  map[string]string{"METRICS_RESOLUTION": "abc"},
			want: Config{Interval: time.Minute},
		},
		"bad prefix": {
			env: map[string]string{"EMITTER_PREFIX": "a/b"},
			err: `emitter: invalid configuration: EMITTER_PREFIX: "a/b" has '/' at byte 1; only A-Z a-z 0-9 . : _ - are allowed`,
		},
		"bad source": {
			env: map[string]string{"EMITTER_SOURCE": "web#1"},
			err: `emitter: invalid configuration: EMITTER_SOURCE: "web#1" has '#' at byte 3; only A-Z a-z 0-9 . : _ - are allowed`,
		},
		"bad bool": {
			env: map[string]string{"EMITTER_RUNTIME": "yes please"},
			err: `emitter: invalid configuration: EMITTER_RUNTIME="yes please" is not a valid bool: strconv.ParseBool: parsing "yes please": invalid syntax`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for _, k := range []string{"EMITTER_INTERVAL", "EMITTER_PREFIX", "EMITTER_SOURCE", "EMITTER_STATSD_ADDR", "EMITTER_RUNTIME", "METRICS_RESOLUTION"} {
				t.Setenv(k, tc.env[k])
				if _, ok := tc.env[k]; !ok {
					os.Unsetenv(k)
				}
			}
			got, err := FromEnv()
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("error\n got %v\nwant %s", err, tc.err)
				}
				if !errors.Is(err, ErrConfig) {
					t.Error("error does not wrap ErrConfig")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Interval != tc.want.Interval || got.Prefix != tc.want.Prefix || got.Source != tc.want.Source ||
				got.StatsdAddr != tc.want.StatsdAddr || got.Runtime != tc.want.Runtime {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPrintEnvUsage(t *testing.T) {
	var b bytes.Buffer
	if err := PrintEnvUsage(&b); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"EMITTER_INTERVAL", "EMITTER_PREFIX", "EMITTER_SOURCE", "EMITTER_STATSD_ADDR", "EMITTER_RUNTIME", "60s"} {
		if !strings.Contains(b.String(), v) {
			t.Errorf("usage lacks %s:\n%s", v, b.String())
		}
	}
	if strings.Contains(b.String(), "This application is configured") {
		t.Errorf("usage carries envconfig's boilerplate:\n%s", b.String())
	}
}

func TestRuntimeMetrics(t *testing.T) {
	e := newTest(t, Config{Runtime: true, Prefix: "app"})
	out := emit(t, e)
	for _, k := range []string{"count#app.go.gc.cycles=", "sample#app.go.gc.heap_goal=", "count#app.go.gc.pause.count=",
		"sample#app.go.goroutines=", "sample#app.go.memory.heap_objects=", "sample#app.go.memory.total="} {
		if !strings.Contains(out, k) {
			t.Errorf("missing %s in %q", k, out)
		}
	}
	// Force pauses, then the next emission reports them with percentiles.
	runtime.GC()
	runtime.GC()
	out = emit(t, e)
	i := strings.Index(out, "count#app.go.gc.cycles=")
	if n, err := parseInt(strings.Fields(out[i:])[0][len("count#app.go.gc.cycles="):]); err != nil || n < 2 {
		t.Errorf("want at least 2 GC cycles in %q", out)
	}
	for _, k := range []string{"sample#app.go.gc.pause.perc99=", "sample#app.go.gc.pause.max="} {
		i := strings.Index(out, k)
		if i < 0 || !strings.HasSuffix(strings.Fields(out[i:])[0], "ms") {
			t.Errorf("missing %s…ms in %q", k, out)
		}
	}
	if !strings.HasPrefix(out, "at=metrics ") {
		t.Errorf("no header: %q", out)
	}
}

func TestAppendFloat(t *testing.T) {
	tests := map[string]struct {
		v    float64
		want string
	}{
		"integer":            {42, "42"},
		"negative zero":      {math.Copysign(0, -1), "0"},
		"fraction":           {0.25, "0.25"},
		"float noise hidden": {10.799999999999999, "10.8"},
		"sum noise hidden":   {0.1 + 0.2, "0.3"},
		"twelve digits kept": {1.23456789012, "1.23456789012"},
		"thirteenth rounded": {1.234567890126, "1.23456789013"},
		"tiny, no exponent":  {0.000000123, "0.000000123"},
		"huge, no exponent":  {1.5e22, "15000000000000000000000"},
		"beyond 2^53":        {1 << 60, "1152921504606847000"},
		"negative fraction":  {-2.5, "-2.5"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := string(AppendValue(nil, tc.v)); got != tc.want {
				t.Errorf("AppendValue(%v) = %q, want %q", tc.v, got, tc.want)
			}
		})
	}
}
