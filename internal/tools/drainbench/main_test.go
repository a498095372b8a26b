package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/testproc"
)

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
