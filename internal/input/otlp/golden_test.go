package otlp

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestHerokuGolden posts JSON bodies shaped like a Fir telemetry drain's
// (resource attributes, app and router records, platform-style metrics) and
// compares the answer, the measurements and the counters with
// testdata/*.golden.
func TestHerokuGolden(t *testing.T) {
	for _, tc := range []struct{ name, path string }{{"heroku-logs", LogsPath}, {"heroku-metrics", MetricsPath}} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := os.ReadFile("testdata/" + tc.name + ".json")
			if err != nil {
				t.Fatal(err)
			}
			r, c := newTestReceiver(t, nil)
			w := post(r, tc.path, "application/json", "", body)
			if err := r.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			st := r.Stats()
			var out strings.Builder
			fmt.Fprintf(&out, "HTTP %d %s\n%s\n", w.Code, w.Header().Get("Content-Type"), w.Body.String())
			out.WriteString(describe(c.all()))
			fmt.Fprintf(&out, "log records %d, data points %d, rejected %d (invalid %d, summaries %d), non-string bodies %d\n",
				st.LogRecords, st.DataPoints, st.Rejected, st.Invalid, st.Summaries, st.NonStringBodies)
			fmt.Fprintf(&out, "input: %+v\n", st.Input)
			golden := "testdata/" + tc.name + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != string(want) {
				t.Errorf("output differs from %s (run with -update and review the diff):\n%s", golden, out.String())
			}
		})
	}
}
