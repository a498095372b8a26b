package input_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/console"
	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// consoleLines are what the worker's local outlet really prints for a bucket
// holding a counter, a sample and a measure (so a change of its format shows
// up here).
func consoleLines(t *testing.T) []string {
	t.Helper()
	agg, err := aggregate.New(aggregate.Config{Resolution: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	at := now.Add(-10 * time.Second)
	agg.Add([]metric.Measurement{
		{Name: "http.requests", Source: "web.1", Time: at, Kind: metric.Counter, Value: 3},
		{Name: "queue", Source: "web.1", Time: at, Kind: metric.Sample, Value: 2},
		{Name: "db", Source: "web.2", Time: at, Kind: metric.Measure, Value: 5, Unit: "ms"},
		{Name: "jobs", Time: at, Kind: metric.Counter, Value: 1},
	})
	var out []byte
	for _, b := range agg.FlushAll() {
		out = console.AppendBucket(out, b, "us-east.prod")
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("console printed %d lines: %q", len(lines), out)
	}
	return lines
}

// TestWorkerOutputNeverCounted: the worker's own console lines, come back
// through the log stream as app[worker.1] lines, are skipped and counted as
// Processor.OwnLines in every input format, while the app's lines and the worker's
// self-metrics around them are counted.
func TestWorkerOutputNeverCounted(t *testing.T) {
	own := consoleLines(t)
	const ts = "2024-05-01T12:00:20.000000+00:00"
	self := "at=metrics count#worker.input.lines=5 sample#worker.aggregate.open_series=2"
	app := "count#http.requests=1"
	wantCounted := []string{
		"2024-05-01T12:00:20Z web.1 count http.requests=1",
		"2024-05-01T12:00:20Z worker.1 count worker.input.lines=5",
		"2024-05-01T12:00:20Z worker.1 sample worker.aggregate.open_series=2",
	}
	syslog := func(proc, msg string) string { return "<190>1 " + ts + " host app " + proc + " - " + msg }
	text := func(proc, msg string) string { return ts + " app[" + proc + "]: " + msg }

	tests := map[string]struct {
		read func(p *input.Processor, lines []string) error
		wrap func(proc, msg string) string
	}{
		"drain or syslog frames": {func(p *input.Processor, l []string) error {
			var b strings.Builder
			for _, m := range l {
				b.WriteString(frame(m))
			}
			return p.ReadFrames(context.Background(), strings.NewReader(b.String()))
		}, syslog},
		"log session text":    {readLines(input.FormatText), text},
		"syslog lines":        {readLines(input.FormatSyslog), syslog},
		"stdin, heroku logs":  {readLines(input.FormatAny), text},
		"stdin, syslog lines": {readLines(input.FormatAny), syslog},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, rec := newProcessor(t, input.Config{})
			var lines []string
			for _, l := range own {
				lines = append(lines, tc.wrap("worker.1", l))
			}
			lines = append(lines, tc.wrap("web.1", app), tc.wrap("worker.1", self))
			if err := tc.read(p, lines); err != nil {
				t.Fatal(err)
			}
			if got := rec.Sorted(); strings.Join(got, "\n") != strings.Join(wantCounted, "\n") {
				t.Errorf("counted\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantCounted, "\n"))
			}
			if st := p.Stats(); p.OwnLines() != uint64(len(own)) || st.Lines != 2 {
				t.Errorf("own lines %d, stats %+v: want %d own lines, Lines 2", p.OwnLines(), st, len(own))
			}
		})
	}

	// Bare stdin lines: the worker's stdout piped back into itself.
	t.Run("stdin, bare", func(t *testing.T) {
		p, rec := newProcessor(t, input.Config{})
		if err := readLines(input.FormatAny)(p, append(own, self)); err != nil {
			t.Fatal(err)
		}
		if rec.Len() != 2 || p.OwnLines() != uint64(len(own)) {
			t.Errorf("counted %q, own lines %d", rec.Sorted(), p.OwnLines())
		}
	})
}

func readLines(f input.Format) func(p *input.Processor, lines []string) error {
	return func(p *input.Processor, lines []string) error {
		return p.ReadLines(context.Background(), strings.NewReader(strings.Join(lines, "\n")+"\n"), f)
	}
}

func TestIsWorkerOutput(t *testing.T) {
	for line, want := range map[string]bool{
		"bucket=2026-12-01T14:00:00Z period=60s source=web.1 count#x=1":   true,
		"bucket=2026-12-01T14:00:00Z period=1s count#x=1":                 true,
		"bucket=uploads count#files=1":                                    false, // an app's own "bucket"
		"bucket=2026-12-01T14:00:00+01:00 period=60s count#x=1":           false,
		"bucket=2026-12-01 14:00:00Z period=60s count#x=1":                false,
		"bucket=2026-12-01T14:00:00Z count#x=1":                           false,
		"at=metrics count#x=1":                                            false,
		"bucket=2026-12-01T14:00:00Z":                                     false,
		"":                                                                false,
		"xbucket=2026-12-01T14:00:00Z period=60s count#x=1":               false,
		"bucket=2026-12-01T14:00:0aZ period=60s count#x=1":                false,
		"bucket=2026-12-01T14:00:00Z period=10s measure#db count=1 sum=5": true,
	} {
		if got := input.IsWorkerOutput([]byte(line)); got != want {
			t.Errorf("IsWorkerOutput(%q) = %v, want %v", line, got, want)
		}
	}
}

var workerOutputRE = regexp.MustCompile(`^bucket=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z period=`)

// FuzzIsWorkerOutput checks the hand-written matcher against the regular
// expression it implements, on any bytes.
func FuzzIsWorkerOutput(f *testing.F) {
	for _, s := range []string{
		"bucket=2026-12-01T14:00:00Z period=60s source=web.1 count#x=1", "bucket=uploads count#files=1",
		"bucket=2026-12-01T14:00:00+01:00 period=60s", "at=metrics count#x=1", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if got, want := input.IsWorkerOutput(msg), workerOutputRE.Match(msg); got != want {
			t.Errorf("IsWorkerOutput(%q) = %v, the expression says %v", msg, got, want)
		}
	})
}
