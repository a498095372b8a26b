package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestStdinToConsole is the README's local run: app lines on stdin (bare,
// `heroku logs` and syslog forms), no outlet configured, buckets on stdout
// when stdin ends.
func TestStdinToConsole(t *testing.T) {
	t.Setenv("METRICS_PREFIX", "demo")
	t.Setenv("EMITTER_INTERVAL", "1h") // keep self-metrics out of the way but for the final emission
	start := time.Now().UTC().Truncate(time.Minute).Add(-time.Minute)
	ts := func(s int) string { return syslogTime(start.Add(time.Duration(s) * time.Second)) }
	in := strings.Join([]string{
		"at=metrics count#http.requests=3 sample#queue=2",
		ts(1) + " app[web.1]: count#http.requests=4 measure#db=5ms",
		ts(2) + " app[web.1]: count#http.requests=1 measure#db=15ms",
		"<190>1 " + ts(3) + " host app web.2 - sample#queue=7 count#http.requests=bad",
		"",
	}, "\n")
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"-stdin"}, strings.NewReader(in), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !strings.HasPrefix(l, "bucket=") {
			t.Errorf("stdout holds a line that is not a bucket: %q", l)
		}
	}
	// The bare line has no timestamp: it lands in the current bucket.
	b := "bucket=" + start.Format(time.RFC3339)
	for _, want := range []string{
		b + " period=60s source=web.1 count#demo.http.requests=5\n",
		b + " period=60s source=web.1 measure#demo.db count=2 sum=20 min=5 max=15 mean=10 median=5 perc95=15 perc99=15 unit=ms\n",
		b + " period=60s source=web.2 sample#demo.queue=7\n",
		" period=60s count#demo.http.requests=3\n",
		" period=60s sample#demo.queue=2\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	// The worker's own health, emitted once more at exit, on stderr: stdout
	// holds the buckets only.
	fields := strings.Fields(stderr.String())
	for _, want := range []string{"count#worker.input.lines=4", "count#worker.input.rejected_pairs=1", "count#worker.aggregate.added=7"} {
		if !slices.Contains(fields, want) {
			t.Errorf("self-metrics lack %s:\n%s", want, stderr.String())
		}
	}
}
