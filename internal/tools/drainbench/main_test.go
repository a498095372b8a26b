package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/testproc"
)

// TestParseReport reads drainload's report line for a remote drain.
func TestParseReport(t *testing.T) {
	const report = "drainload: http://bench:xxxxx@127.0.0.1:1/logs, 8 connections, 100 lines/body\n" +
		"sent     1234500 lines in 12345 POSTs in 2.5s (493800 lines/s); 503 retries 17, error retries 0, failed POSTs 2\n"
	var r round
	if err := parseReport(report, &r); err != nil {
		t.Fatal(err)
	}
	if r.Lines != 1234500 || r.Posts != 12345 || r.Elapsed != 2500*time.Millisecond || r.Refused != 17 || r.Failed != 2 || r.LinesPerSec != 493800 {
		t.Errorf("parsed %+v", r)
	}
	if err := parseReport("drainload: nothing sent\n", &r); err == nil {
		t.Error("a report without a sent line parsed")
	}
}

// TestBench runs one short round of each mode against the built worker and a
// real redis-server: both accept lines, none is given up on, and the worker's
// CPU time is measured.
func TestBench(t *testing.T) {
	if testproc.Find("REDIS_SERVER_BIN", "redis-server") == "" {
		testproc.Missing(t, "no redis-server (apt-get install redis-server)")
	}
	var out bytes.Buffer
	rounds, err := bench(context.Background(), options{Rounds: 1, Duration: time.Second, Conns: 2, BodyLines: 100}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(rounds) != 2 || rounds[0].Redis || !rounds[1].Redis {
		t.Fatalf("rounds %+v, want off then on", rounds)
	}
	for _, r := range rounds {
		if r.Lines <= 0 || r.Lines != r.Posts*100 || r.Failed != 0 || r.WorkerCPU <= 0 {
			t.Errorf("%s: %+v", mode(r.Redis), r)
		}
	}
	summarize(&out, rounds)
	if !strings.Contains(out.String(), "ratio     on/off") {
		t.Errorf("no ratio in the summary:\n%s", out.String())
	}
}
