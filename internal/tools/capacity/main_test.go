package main

import (
	"bytes"
	"context"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/testproc"
	"github.com/dynometrics/dynometrics/internal/tools/load"
)

// TestParseInfo reads a real INFO reply of redis-server 7.0.15
// (testdata/info.txt: `INFO commandstats stats memory cpu keyspace clients` after
// one SET and one EVAL that ran a SET), with its CRLF line ends and with LF.
func TestParseInfo(t *testing.T) {
	raw, err := os.ReadFile("testdata/info.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("\r\n")) {
		t.Fatal("the fixture lost its CRLF line ends")
	}
	for name, text := range map[string]string{"CRLF": string(raw), "LF": strings.ReplaceAll(string(raw), "\r\n", "\n")} {
		t.Run(name, func(t *testing.T) {
			in, err := parseInfo(text)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := in.cmds, map[string]cmdStat{"eval": {Calls: 1, Usec: 75}, "set": {Calls: 2, Usec: 68}}; len(got) != len(want) || got["eval"] != want["eval"] || got["set"] != want["set"] {
				t.Errorf("commandstats %+v, want %+v", got, want)
			}
			at := time.Unix(1, 0)
			s, err := sampleOf(in, at)
			if err != nil {
				t.Fatal(err)
			}
			want := redisSample{At: at, Calls: 3, Scripts: 1, Usec: 143, CPU: 33813 * time.Microsecond,
				NetIn: 181, NetOut: 9, UsedMemory: 965328, Keys: 2, Clients: 1}
			if s != want {
				t.Errorf("sample\n%+v, want\n%+v", s, want)
			}
		})
	}
}

// TestParseInfoErrors: a malformed reply is an error naming the line, never
// a sample of zeros.
func TestParseInfoErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"empty", "", "empty reply"},
		{"only a header", "# Stats\r\n", "empty reply"},
		{"no colon", "# Stats\r\ntotal_net_input_bytes 12\r\n", "line 2"},
		{"calls not a number", "cmdstat_get:calls=x,usec=1,usec_per_call=1.00\r\n", "calls of get"},
		{"usec missing", "cmdstat_get:calls=1,usec_per_call=1.00\r\n", "without calls and usec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseInfo(tc.text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	// A reply without the fields a sample needs.
	in, err := parseInfo("used_memory:12\r\ndb0:keys=x,expires=0\r\n")
	if err != nil {
		t.Fatal(err)
	}
	_, err = sampleOf(in, time.Time{})
	for _, want := range []string{"total_net_input_bytes", "total_net_output_bytes", "connected_clients", "used_cpu_user", "used_cpu_sys", "db0 keys"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to name %s", err, want)
		}
	}
}

// TestSampleSub: counters become changes, levels stay.
func TestSampleSub(t *testing.T) {
	a := redisSample{Calls: 10, Scripts: 2, Usec: 100, CPU: time.Second, NetIn: 1000, NetOut: 50, UsedMemory: 5000, Keys: 7, Clients: 9}
	b := redisSample{At: time.Unix(9, 0), Calls: 25, Scripts: 5, Usec: 160, CPU: 3 * time.Second, NetIn: 1800, NetOut: 90, UsedMemory: 4000, Keys: 3, Clients: 4}
	want := redisSample{At: time.Unix(9, 0), Calls: 15, Scripts: 3, Usec: 60, CPU: 2 * time.Second, NetIn: 800, NetOut: 40, UsedMemory: 4000, Keys: 3, Clients: 4}
	if got := b.sub(a); got != want {
		t.Errorf("%+v, want %+v", got, want)
	}
}

// TestParseEmission reads a line the worker printed (testdata/emission.txt,
// its worker.redis.* self-metrics) and lines it did not.
func TestParseEmission(t *testing.T) {
	raw, err := os.ReadFile("testdata/emission.txt")
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(raw))
	m, ok := parseEmission(line)
	if !ok {
		t.Fatal("the worker's emission was not recognised")
	}
	if n := strings.Count(line, "count#") + strings.Count(line, "sample#"); len(m) != n {
		t.Errorf("%d metrics parsed of %d", len(m), n)
	}
	for name, want := range map[string]float64{"worker.redis.leases": 16, "worker.redis.live_workers": 1, "worker.redis.flush_ms": 0} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	m, ok = parseEmission("at=metrics count#worker.redis.flush_ms=1234 sample#worker.outlet.librato.latency_ms=3.5 measure#x=1ms count#bad=1e400 count#=3 source=web.1 count#noval")
	if !ok || len(m) != 2 || m["worker.redis.flush_ms"] != 1234 || m["worker.outlet.librato.latency_ms"] != 3.5 {
		t.Errorf("parsed %v", m)
	}
	for _, l := range []string{"time=2026-12-03T21:49:44.976Z level=INFO msg=x", "capacity.m0001.count web.1 3", "", "at=metricsx count#a=1"} {
		if _, ok := parseEmission(l); ok {
			t.Errorf("%q taken for an emission", l)
		}
	}
}

// TestEmissionsFiled: an emission is filed under the interval multiple it
// precedes, lines split over writes are joined, the same name in two
// emissions of one index is summed, and log lines are not taken for one.
func TestEmissionsFiled(t *testing.T) {
	res := 10 * time.Second
	e := newEmissions(res, 500*time.Millisecond)
	var mu sync.Mutex
	now := time.Unix(1000*10, 0).Add(-480 * time.Millisecond) // just after the tick before 10,000 s
	e.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	write := func(s string) {
		if _, err := e.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	write("at=metrics count#worker.redis.flush_ms=12 sample#worker.redis.leases=8\ntime=2026-12-03T00:00:00Z level=INFO msg=hello\nat=metrics count#worker.re")
	write("dis.commands=40\n")
	write("at=metrics count#worker.redis.flush_ms=3\n")
	mu.Lock()
	now = now.Add(res + 300*time.Millisecond) // late, but nearer the next tick than any other
	mu.Unlock()
	write("at=metrics count#worker.redis.flush_ms=7\n")
	if got := e.at(1000); len(got) != 3 || got["worker.redis.flush_ms"] != 15 || got["worker.redis.commands"] != 40 || got["worker.redis.leases"] != 8 {
		t.Errorf("index 1000: %v", got)
	}
	if got := e.at(1001); len(got) != 1 || got["worker.redis.flush_ms"] != 7 {
		t.Errorf("index 1001: %v", got)
	}
	if e.at(999) != nil {
		t.Errorf("index 999: %v", e.at(999))
	}
}

// seriesSink records every measurement's series and kind.
type seriesSink struct {
	mu     sync.Mutex
	series map[[2]string]metric.Kind
	times  map[time.Time]int
	n      int
}

func (s *seriesSink) Add(ms []metric.Measurement) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range ms {
		s.series[[2]string{m.Name, m.Source}] = m.Kind
		s.times[m.Time]++
		s.n++
	}
}

// TestCorpus parses the corpus's bodies with the worker's own drain parser:
// every body stamped with the sending time, together they carry exactly the
// asked number of distinct series once each, a tenth… of each kind.
func TestCorpus(t *testing.T) {
	for _, series := range []int{2_000, 10_000} {
		c, err := newCorpus(series, 100)
		if err != nil {
			t.Fatal(err)
		}
		sink := &seriesSink{series: map[[2]string]metric.Kind{}, times: map[time.Time]int{}}
		p, err := input.NewProcessor(sink, input.Config{})
		if err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 12, 3, 23, 15, 7, 123456000, time.UTC)
		var buf []byte
		lines := 0
		for b := range c.bodies {
			buf = c.stamp(buf, b, at)
			if err := p.ReadFrames(context.Background(), bytes.NewReader(buf)); err != nil {
				t.Fatal(err)
			}
			lines += c.lines[b]
		}
		st := p.Stats()
		if int(st.Lines) != lines || lines != series/perLine || st.RejectedLines+st.MalformedFrames+st.BadHeaders != 0 {
			t.Fatalf("%d series: %d lines parsed of %d, stats %+v", series, st.Lines, lines, st)
		}
		if sink.n != series || len(sink.series) != series {
			t.Errorf("%d series: %d measurements of %d distinct series", series, sink.n, len(sink.series))
		}
		if len(sink.times) != 1 || sink.times[at] != series {
			t.Errorf("%d series: timestamps %v, want all %v", series, sink.times, at)
		}
		kinds := map[metric.Kind]int{}
		for _, k := range sink.series {
			kinds[k]++
		}
		if kinds[metric.Counter] != series*3/10 || kinds[metric.Sample] != series*3/10 || kinds[metric.Measure] != series*4/10 {
			t.Errorf("%d series: kinds %v", series, kinds)
		}
		sources := map[string]bool{}
		for k := range sink.series {
			sources[k[1]] = true
		}
		if want := max(1, series/namesPerSource); len(sources) != want {
			t.Errorf("%d series over %d sources, want %d", series, len(sources), want)
		}
	}
	if _, err := newCorpus(1005, 100); err == nil {
		t.Error("a series count not a multiple of 10 was taken")
	}
}

// TestHarness runs one configuration of the quick matrix against the built
// worker and a real redis-server, and checks that what it measured is
// there: the bucket's 16 (partition, bucket)s flushed by the one worker, a
// flush time, Redis commands, CPU, traffic and memory, lines ingested in
// both phases, nothing dropped.
func TestHarness(t *testing.T) {
	if testproc.Find("REDIS_SERVER_BIN", "redis-server") == "" {
		testproc.Missing(t, "no redis-server (apt-get install redis-server)")
	}
	o := quick(defaults())
	o.Workers = []int{1}
	var progress bytes.Buffer
	rep, err := harness(context.Background(), o, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if len(rep.Configs) != 1 || len(rep.Configs[0].Intervals) != 1 {
		t.Fatalf("configs %+v", rep.Configs)
	}
	c := rep.Configs[0]
	s := c.summarize(o.Partitions, rep.FrameKeyBytes)
	if s.Flushed != 16 || s.Want != 16 || s.Leases != "16" {
		t.Errorf("flushed %v of %v, leases %q", s.Flushed, s.Want, s.Leases)
	}
	if s.FlushMax <= 0 || s.Calls <= 0 || s.Scripts <= 0 || s.ClientCmds <= 0 || s.RedisCPU <= 0 || s.NetIn <= 0 || s.NetOut <= 0 || s.Mem <= s.Frames || s.Frames <= 0 {
		t.Errorf("summary %+v", s)
	}
	if rep.FrameKeyBytes < 40 || rep.FrameKeyBytes > 400 {
		t.Errorf("a Frame-Id key measured at %.0f bytes", rep.FrameKeyBytes)
	}
	if len(s.Drops) != 0 || len(s.Errors) != 0 || len(c.Lost) != 0 || len(c.Notes) != 0 {
		t.Errorf("drops %v, errors %v, lost %v, notes %v", s.Drops, s.Errors, c.Lost, c.Notes)
	}
	// One bucket's lines at the paced rate (the ingest counters lag by a body).
	if want := o.Rate * o.Resolution.Seconds(); s.Lines < want*0.8 || s.Lines > want*1.2 {
		t.Errorf("%.0f lines in the measured bucket, want about %.0f", s.Lines, want)
	}
	if c.Max.Lines <= 0 || c.Max.Failed != 0 || c.Paced.Failed != 0 {
		t.Errorf("paced %+v, max %+v", c.Paced, c.Max)
	}
	var out bytes.Buffer
	rep.print(&out, "capacity -quick")
	for _, want := range []string{"`capacity -quick`", "| 1 | 2,000 |", "REDIS_BALANCE=true"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report without %q:\n%s", want, out.String())
		}
	}
}

// TestIsError: the self-metrics the report lists as failures.
func TestIsError(t *testing.T) {
	for name, want := range map[string]bool{
		"worker.redis.errors.timeout":         true,
		"worker.redis.flush_errors":           true,
		"worker.redis.handover_errors":        true,
		"worker.outlet.librato.send_failures": true,
		"worker.redis.fenced":                 true,
		"worker.redis.flush_ms":               false,
		"worker.redis.frame_duplicates":       false,
		"worker.outlet.librato.batches_sent":  false,
	} {
		if got := isError(name); got != want {
			t.Errorf("isError(%s) = %v, want %v", name, got, want)
		}
	}
}

// TestIsDrop: the self-metrics the report lists as drops.
func TestIsDrop(t *testing.T) {
	for name, want := range map[string]bool{
		"worker.aggregate.dropped":                   true,
		"worker.aggregate.dropped.series_limit":      true,
		"worker.aggregate.late":                      true,
		"worker.redis.late_series":                   true,
		"worker.outlet.librato.measurements_dropped": true,
		"worker.drain.saturated":                     true,
		"worker.outlet.librato.latency_ms":           false,
		"worker.redis.flush_ms":                      false,
		"worker.redis.commands":                      false,
		"worker.outlet.librato.batches_sent":         false,
	} {
		if got := isDrop(name); got != want {
			t.Errorf("isDrop(%s) = %v, want %v", name, got, want)
		}
	}
}

// TestPartials: at one line per series per bucket each series is held by
// one worker whatever their number; at many, by every worker.
func TestPartials(t *testing.T) {
	res := 10 * time.Second
	for _, tc := range []struct {
		workers, series int
		rate            float64 // lines per second
		wantL, wantP    float64
	}{
		{1, 100_000, 1_000, 1, 100_000},  // one worker holds everything
		{4, 100_000, 1_000, 1, 100_000},  // one line each: one worker each
		{2, 100_000, 2_000, 2, 150_000},  // two lines over two workers: 2·(1−¼)
		{4, 10_000, 20_000, 200, 40_000}, // 200 lines: every worker
	} {
		c := config{Workers: tc.workers, Series: tc.series, Paced: load.Counts{Lines: int64(tc.rate * 10), Elapsed: 10 * time.Second}}
		l, p := c.partials(res)
		if math.Abs(l-tc.wantL) > 1e-9 || math.Abs(p-tc.wantP) > 0.5 {
			t.Errorf("%d workers, %d series, %v lines/s: L %v, partials %v; want %v, %v", tc.workers, tc.series, tc.rate, l, p, tc.wantL, tc.wantP)
		}
	}
}
