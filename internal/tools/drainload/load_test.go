package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/tools/load"
)

// TestRun runs the load generator against the in-process drain with a small
// line count and checks that every line sent was counted.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	cfg := config{Conns: 3, Lines: 20_000, Duration: time.Minute, BodyLines: 100, MaxConns: 2}
	res, err := run(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if res.Lines != 20_000 || res.Counted != 20_000 || res.Posts != 200 {
		t.Errorf("sent %d lines in %d POSTs, counted %d; want 20000, 200, 20000", res.Lines, res.Posts, res.Counted)
	}
	if res.Measurements == 0 || res.Measurements != res.WantMeasurements {
		t.Errorf("measurements %d, want %d", res.Measurements, res.WantMeasurements)
	}
	if res.Rejected != 0 || res.Malformed != 0 || res.BadHeaders != 0 || res.Duplicates != 0 {
		t.Errorf("rejected %d, malformed %d, bad headers %d, duplicates %d; want 0", res.Rejected, res.Malformed, res.BadHeaders, res.Duplicates)
	}
	if res.RSS.Max <= 0 {
		t.Errorf("no VmRSS sampled: %+v", res.RSS)
	}
	for _, want := range []string{"counted  20000 lines", "VmRSS", "lines per CPU-second"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRunDuration checks that the time limit stops a run early.
func TestRunDuration(t *testing.T) {
	var out bytes.Buffer
	cfg := config{Conns: 2, Lines: 1 << 40, Duration: 200 * time.Millisecond, BodyLines: 10}
	res, err := run(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if res.Elapsed > 5*time.Second || res.Lines == 0 || res.Counted != res.Lines {
		t.Errorf("send time %v, sent %d, counted %d", res.Elapsed, res.Lines, res.Counted)
	}
}

func TestMakeBodies(t *testing.T) {
	bodies := load.MixedBodies(nBodies, 100)
	per, err := measurementsPerBody(bodies)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range bodies {
		lines := bytes.Count(b, []byte("\n"))
		if lines != 100 {
			t.Errorf("body %d: %d lines, want 100", i, lines)
		}
		if avg := len(b) / lines; avg < 150 || avg > 250 {
			t.Errorf("body %d: %d bytes per line, want about 200", i, avg)
		}
		if per[i] < 200 {
			t.Errorf("body %d: %d measurements, want at least 2 per line", i, per[i])
		}
	}
}
