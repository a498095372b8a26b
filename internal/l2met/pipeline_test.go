package l2met_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/l2met"
	"github.com/dynometrics/dynometrics/internal/logplex"
	"github.com/dynometrics/dynometrics/internal/metric"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// pipeline runs a drain body through framing, header and metric parsing and
// describes every measurement and error, one per line.
func pipeline(t testing.TB, body []byte) string {
	var out strings.Builder
	s := logplex.NewScanner(bytes.NewReader(body), 0)
	p := l2met.NewParser()
	var ms []metric.Measurement
	for {
		frame, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintf(&out, "frame error: %v\n", err)
			continue
		}
		h, msg, err := logplex.ParseMessage(frame)
		if err != nil {
			fmt.Fprintf(&out, "header error: %v\n", err)
			continue
		}
		ms, err = p.Parse(ms[:0], l2met.Line{Time: h.Time, AppName: h.AppName, ProcID: h.ProcID, Msg: msg})
		for _, m := range ms {
			fmt.Fprintf(&out, "%s %s %s source=%q value=%s unit=%q\n", m.Time.Format(time.RFC3339Nano), m.Kind, m.Name,
				m.Source, strconv.FormatFloat(m.Value, 'f', -1, 64), m.Unit)
		}
		if err != nil {
			fmt.Fprintf(&out, "parse error: %v\n", err)
		}
	}
	fmt.Fprintf(&out, "parser stats: %+v\n", p.Stats())
	fmt.Fprintf(&out, "scanner stats: %+v\n", s.Stats())
	return out.String()
}

func TestDrainGolden(t *testing.T) {
	for _, name := range []string{"drain", "broken", "router2"} {
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile("testdata/" + name + ".body")
			if err != nil {
				t.Fatal(err)
			}
			got := pipeline(t, body)
			golden := "testdata/" + name + ".golden"
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
				g, w := strings.Split(got, "\n"), strings.Split(string(want), "\n")
				for i := 0; i < len(g) || i < len(w); i++ {
					if i >= len(g) || i >= len(w) || g[i] != w[i] {
						t.Fatalf("output differs from %s at line %d (run with -update and review the diff):\n got %q\nwant %q",
							golden, i+1, strings.Join(g[i:min(i+1, len(g))], ""), strings.Join(w[i:min(i+1, len(w))], ""))
					}
				}
			}
		})
	}
}

// TestZeroAllocs checks the steady state: once names, sources and units are
// interned, framing, header and metric parsing of valid lines allocate nothing.
func TestZeroAllocs(t *testing.T) {
	body, err := os.ReadFile("testdata/bench.body")
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(body)
	s := logplex.NewScanner(r, 0)
	p := l2met.NewParser()
	ms := make([]metric.Measurement, 0, 64)
	run := func() {
		r.Reset(body)
		s.Reset(r)
		for {
			frame, err := s.Next()
			if err != nil {
				if err != io.EOF {
					t.Fatal(err)
				}
				return
			}
			h, msg, err := logplex.ParseMessage(frame)
			if err != nil {
				t.Fatal(err)
			}
			if ms, err = p.Parse(ms[:0], l2met.Line{Time: h.Time, AppName: h.AppName, ProcID: h.ProcID, Msg: msg}); err != nil {
				t.Fatal(err)
			}
		}
	}
	run()
	if allocs := testing.AllocsPerRun(20, run); allocs != 0 {
		t.Errorf("%v allocations per body, want 0", allocs)
	}
}

// benchLines returns the frames of testdata/bench.body, parsed.
func benchLines(b *testing.B) ([]byte, []l2met.Line) {
	body, err := os.ReadFile("testdata/bench.body")
	if err != nil {
		b.Fatal(err)
	}
	s := logplex.NewScanner(bytes.NewReader(body), 0)
	var lines []l2met.Line
	for {
		frame, err := s.Next()
		if err != nil {
			break
		}
		h, msg, err := logplex.ParseMessage(append([]byte(nil), frame...))
		if err != nil {
			b.Fatal(err)
		}
		lines = append(lines, l2met.Line{Time: h.Time, AppName: h.AppName, ProcID: h.ProcID, Msg: msg})
	}
	return body, lines
}

func report(b *testing.B, lines int) {
	ns := float64(b.Elapsed().Nanoseconds()) / float64(lines)
	b.ReportMetric(ns, "ns/line")
	b.ReportMetric(1e9/ns, "lines/s")
}

// BenchmarkPipeline measures framing + header + metric parsing of a drain body
// of typical lines of mixed kinds (router, runtime old and new, add-on, app
// count/measure/sample, L10, R14; 19 lines averaging about 190 bytes).
func BenchmarkPipeline(b *testing.B) {
	body, _ := benchLines(b)
	r := bytes.NewReader(body)
	s := logplex.NewScanner(r, 0)
	p := l2met.NewParser()
	ms := make([]metric.Measurement, 0, 64)
	n := 0
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(body)
		s.Reset(r)
		for {
			frame, err := s.Next()
			if err != nil {
				break
			}
			h, msg, err := logplex.ParseMessage(frame)
			if err != nil {
				b.Fatal(err)
			}
			ms, _ = p.Parse(ms[:0], l2met.Line{Time: h.Time, AppName: h.AppName, ProcID: h.ProcID, Msg: msg})
			n++
		}
	}
	report(b, n)
}

// BenchmarkParse measures metric parsing alone over the same lines.
func BenchmarkParse(b *testing.B) {
	_, lines := benchLines(b)
	p := l2met.NewParser()
	ms := make([]metric.Measurement, 0, 64)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		for _, l := range lines {
			ms, _ = p.Parse(ms[:0], l)
			n++
		}
	}
	report(b, n)
}

// BenchmarkParseKinds measures one line of each kind.
func BenchmarkParseKinds(b *testing.B) {
	_, lines := benchLines(b)
	for _, i := range []int{0, 2, 5, 6, 8, 10, 11, 13, 16} {
		l := lines[i]
		b.Run(fmt.Sprintf("%d-%s-%s", i, l.AppName, l.ProcID), func(b *testing.B) {
			p := l2met.NewParser()
			ms := make([]metric.Measurement, 0, 64)
			b.SetBytes(int64(len(l.Msg)))
			b.ReportAllocs()
			for b.Loop() {
				ms, _ = p.Parse(ms[:0], l)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/drain.body", "testdata/router2.body"} {
		body, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		s := logplex.NewScanner(bytes.NewReader(body), 0)
		for {
			frame, err := s.Next()
			if err != nil {
				break
			}
			h, msg, _ := logplex.ParseMessage(frame)
			f.Add(string(h.AppName), string(h.ProcID), string(msg))
		}
	}
	f.Fuzz(func(t *testing.T, app, proc, msg string) {
		if l2met.IsRouterLine([]byte(msg)) && !strings.HasPrefix(msg, "at=") {
			t.Fatalf("IsRouterLine(%q) without at=", msg)
		}
		p := l2met.NewParser()
		ms, err := p.Parse(nil, l2met.Line{AppName: []byte(app), ProcID: []byte(proc), Msg: []byte(msg)})
		var pe *l2met.ParseError
		if err != nil && (!errors.As(err, &pe) || pe.Rejected < 1) {
			t.Fatalf("bad error %v", err)
		}
		if len(ms) > l2met.MaxPerLine+1 {
			t.Fatalf("%d measurements", len(ms))
		}
		for _, m := range ms {
			if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
				t.Fatalf("non-finite value in %+v", m)
			}
			if m.Kind < metric.Counter || m.Kind > metric.Measure || len(m.Name) == 0 || len(m.Name) > 220 ||
				len(m.Unit) > l2met.MaxUnitLen || len(m.Source) > l2met.MaxSourceLen {
				t.Fatalf("bad measurement %+v", m)
			}
			// Source may be the ProcID as given; anything parsed from Msg has no spaces.
			if strings.Contains(m.Name, " ") || (m.Source != proc && strings.Contains(m.Source, " ")) {
				t.Fatalf("space in name or source: %+v", m)
			}
		}
		st := p.Stats()
		if st.Lines != 1 || st.Measurements != uint64(len(ms)) {
			t.Fatalf("stats %+v for %d measurements", st, len(ms))
		}
	})
}
