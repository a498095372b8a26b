package input_test

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/dynometrics/dynometrics/internal/input"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestDrainBodyFixture runs a real-shaped drain body (router, runtime
// metrics, add-on metrics, L10, app lines, one malformed frame) through the
// pipeline with the real parsers and compares the measurements and counters
// with testdata/drain-body.golden.
func TestDrainBodyFixture(t *testing.T) {
	body, err := os.ReadFile("testdata/drain-body.logplex")
	if err != nil {
		t.Fatal(err)
	}
	p, rec := newProcessor(t, input.Config{})
	s := p.Session()
	frames := s.Frames(body)
	s.Release()
	got := strings.Join(rec.Lines(), "\n") + "\n" + fmt.Sprintf("frames=%d %+v\n", frames, p.Stats())
	const golden = "testdata/drain-body.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
