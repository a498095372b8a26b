package l2met

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/metric"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 123456000, time.UTC)

func line(app, proc, msg string) Line {
	return Line{Time: t0, AppName: []byte(app), ProcID: []byte(proc), Msg: []byte(msg)}
}

func m(name, source string, kind metric.Kind, v float64, unit string) metric.Measurement {
	return metric.Measurement{Name: name, Source: source, Time: t0, Kind: kind, Value: v, Unit: unit}
}

func TestParse(t *testing.T) {
	tests := map[string]struct {
		in      Line
		want    []metric.Measurement
		wantErr string
	}{
		"app count and measure": {
			in:   line("app", "web.1", "count#req=1 measure#db.latency=4ms"),
			want: []metric.Measurement{m("req", "web.1", metric.Counter, 1, ""), m("db.latency", "web.1", metric.Measure, 4, "ms")},
		},
		"bare count, text around, negative sample, percent": {
			in: line("app", "web.1", "Completed 200 OK in 12ms count#http.requests measure#http.latency=12.5ms sample#queue.depth=-3 sample#cpu=99.5%"),
			want: []metric.Measurement{m("http.requests", "web.1", metric.Counter, 1, ""), m("http.latency", "web.1", metric.Measure, 12.5, "ms"),
				m("queue.depth", "web.1", metric.Sample, -3, ""), m("cpu", "web.1", metric.Sample, 99.5, "%")},
		},
		"legacy measure.name and exponent": {
			in:   line("app", "worker.2", "measure.jobs.duration=1.5e3ms count#jobs.done=2 sample#tiny=-2.5E-3 sample#big=+12e+2x"),
			want: []metric.Measurement{m("jobs.duration", "worker.2", metric.Measure, 1500, "ms"), m("jobs.done", "worker.2", metric.Counter, 2, ""), m("tiny", "worker.2", metric.Sample, -0.0025, ""), m("big", "worker.2", metric.Sample, 1200, "x")},
		},
		"quoted values do not confuse the pair scanner": {
			in:   line("app", "web.2", `at=info msg="cache \"hit\" count#fake=9" count#cache.hits=3 "count#also=fake" desc="x`),
			want: []metric.Measurement{m("cache.hits", "web.2", metric.Counter, 3, "")},
		},
		"source pair wins over procid, anywhere in the line": {
			in:   line("app", "web.1", "count#a=1 source=checkout"),
			want: []metric.Measurement{m("a", "checkout", metric.Counter, 1, "")},
		},
		"quoted source": {
			in:   line("app", "web.1", `source="api" count#a=1`),
			want: []metric.Measurement{m("a", "api", metric.Counter, 1, "")},
		},
		"bare line has no source": {
			in:   Line{Time: t0, Msg: []byte("count#a=1")},
			want: []metric.Measurement{m("a", "", metric.Counter, 1, "")},
		},
		"no metrics": {
			in: line("app", "web.1", `[INFO] plain log line without metrics count=5 measure=x`),
		},
		"plain text, no # and no measure: skipped whole": {
			in: line("app", "web.1", `GET /items val=3 units=MB source=web.9 sample=1 count=2 "x y"`),
		},
		"plain-looking start, legacy forms later": {
			in:   line("app", "web.1", `[INFO] done measure=jobs val=4 units=ms measure.queue=2 x="a b"`),
			want: []metric.Measurement{m("queue", "web.1", metric.Measure, 2, ""), m("jobs", "web.1", metric.Measure, 4, "ms")},
		},
		"rejected values, good ones kept": {
			in:      line("app", "web.1", "count#req=abc measure#lat=NaN sample#x=Inf measure#ok=1ms sample#y=1e999 count#z=5ms/s measure#e= sample#f"),
			want:    []metric.Measurement{m("ok", "web.1", metric.Measure, 1, "ms")},
			wantErr: `l2met: 7 rejected, first: count#req: value "abc" is not a number`,
		},
		"empty name": {
			in:      line("app", "web.1", "count#=3 count#"),
			wantErr: `l2met: 2 rejected, first: count#: empty name`,
		},
		"runtime metrics, current form": {
			in: line("heroku", "web.1", "source=web.1 dyno=heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456 sample#memory_total=21.00MB sample#memory_rss=21.22MB sample#memory_pgpgin=348836pages sample#load_avg_1m=2.46"),
			want: []metric.Measurement{m("memory_total", "web.1", metric.Sample, 21, "MB"), m("memory_rss", "web.1", metric.Sample, 21.22, "MB"),
				m("memory_pgpgin", "web.1", metric.Sample, 348836, "pages"), m("load_avg_1m", "web.1", metric.Sample, 2.46, "")},
		},
		"runtime metrics, old labs form is a Measure (memory_rss.median exists downstream)": {
			in:   line("heroku", "web.1", "source=heroku.2808254.web.1.d97d0ea7-cf3d-411b-b453-d2943a50b456 measure=memory_rss val=21.22 units=MB"),
			want: []metric.Measurement{m("memory_rss", "web.1", metric.Measure, 21.22, "MB")},
		},
		"runtime metrics, old labs form without units": {
			in:   line("heroku", "run.9157", "source=heroku.2808254.run.9157.d97d0ea7-cf3d-411b-b453-d2943a50b456 measure=load_avg_5m val=0.05"),
			want: []metric.Measurement{m("load_avg_5m", "run.9157", metric.Measure, 0.05, "")},
		},
		"old form from an app is a metric.Measure": {
			in:   line("app", "web.1", "measure=db.get val=20 units=ms"),
			want: []metric.Measurement{m("db.get", "web.1", metric.Measure, 20, "ms")},
		},
		"old form with bad units": {
			in:      line("heroku", "web.1", "measure=memory_rss val=21.22 units=M1"),
			wantErr: `l2met: 1 rejected, first: units: value "M1" is not letters or %`,
		},
		"postgres add-on": {
			in: line("app", "heroku-postgres", "source=DATABASE addon=postgres-parallel-38743 sample#db_size=8945836.0bytes sample#active-connections=3 sample#index-cache-hit-rate=0.99396 sample#memory-total=4045592.0kB sample#write-iops=0.011458"),
			want: []metric.Measurement{m("db_size", "DATABASE", metric.Sample, 8945836, "bytes"), m("active-connections", "DATABASE", metric.Sample, 3, ""),
				m("index-cache-hit-rate", "DATABASE", metric.Sample, 0.99396, ""), m("memory-total", "DATABASE", metric.Sample, 4045592, "kB"), m("write-iops", "DATABASE", metric.Sample, 0.011458, "")},
		},
		"redis add-on": {
			in:   line("app", "heroku-redis", "source=REDIS addon=redis-cubed-98704 sample#memory-redis=1908016bytes sample#hit-rate=0.0096774"),
			want: []metric.Measurement{m("memory-redis", "REDIS", metric.Sample, 1908016, "bytes"), m("hit-rate", "REDIS", metric.Sample, 0.0096774, "")},
		},
		"router info": {
			in: line("heroku", "router", `at=info method=GET path="/" host=ex.herokuapp.com request_id=5d1a fwd="1.2.3.4" dyno=web.1 connect=1ms service=18ms status=200 bytes=13 protocol=https`),
			want: []metric.Measurement{m("router.connect", "web.1", metric.Measure, 1, "ms"), m("router.service", "web.1", metric.Measure, 18, "ms"),
				m("router.status.2xx", "web.1", metric.Counter, 1, ""), m("router.bytes", "web.1", metric.Measure, 13, "bytes")},
		},
		"router H12": {
			in: line("heroku", "router", `at=error code=H12 desc="Request timeout" method=GET path="/slow" host=ex.herokuapp.com fwd="1.2.3.4" dyno=web.2 connect=0ms service=30000ms status=503 bytes=0 protocol=https`),
			want: []metric.Measurement{m("router.error.H12", "web.2", metric.Counter, 1, ""), m("router.connect", "web.2", metric.Measure, 0, "ms"),
				m("router.service", "web.2", metric.Measure, 30000, "ms"), m("router.status.5xx", "web.2", metric.Counter, 1, ""), m("router.bytes", "web.2", metric.Measure, 0, "bytes")},
		},
		"router H14 with empty fields, old line without request_id": {
			in:   line("heroku", "router", `at=error code=H14 desc="No web processes running" method=GET path="/favicon.ico" host=ex.herokuapp.com fwd="1.2.3.4" dyno= connect= service= status=503 bytes=`),
			want: []metric.Measurement{m("router.error.H14", "router", metric.Counter, 1, ""), m("router.status.5xx", "router", metric.Counter, 1, "")},
		},
		"router with bad fields": {
			in:      line("heroku", "router", `at=error code=h12 dyno=web.1 connect=5s service=x status=600 bytes=5kB`),
			want:    nil,
			wantErr: `l2met: 5 rejected, first: code: value "h12" is not an error code`,
		},
		"router path with quotes and spaces": {
			in:   line("heroku", "router", `at=info method=POST path="/api?q=\"x status=500\"" dyno=web.1 status=201`),
			want: []metric.Measurement{m("router.status.2xx", "web.1", metric.Counter, 1, "")},
		},
		"Router 2.0: unquoted fwd, protocol, tls fields": {
			in: line("heroku", "router", `at=info method=GET path="/" host=my-app.example.com request_id=6903a168-b79b-ec27-03c8-b8f64d8d8792 fwd=138.68.186.89 dyno=web.1 connect=0ms service=3ms status=200 bytes=0 protocol=http2.0 tls=true tls_version=tls1.3`),
			want: []metric.Measurement{m("router.connect", "web.1", metric.Measure, 0, "ms"), m("router.service", "web.1", metric.Measure, 3, "ms"),
				m("router.status.2xx", "web.1", metric.Counter, 1, ""), m("router.bytes", "web.1", metric.Measure, 0, "bytes"),
				m("router.protocol.http2.0", "web.1", metric.Counter, 1, "")},
		},
		"Router 2.0 error over HTTP/1.1, Fir dyno name": {
			in: line("heroku", "router", `at=error code=H13 desc="Connection closed without response" method=POST path="/upload" host=my-app.example.com request_id=1f0e fwd=10.1.2.3,138.68.186.89 dyno=web-5d8f7c9b4-x2k9p connect=1ms service=120ms status=503 bytes=0 protocol=http1.1 tls=false tls_version=unknown`),
			want: []metric.Measurement{m("router.error.H13", "web-5d8f7c9b4-x2k9p", metric.Counter, 1, ""), m("router.connect", "web-5d8f7c9b4-x2k9p", metric.Measure, 1, "ms"),
				m("router.service", "web-5d8f7c9b4-x2k9p", metric.Measure, 120, "ms"), m("router.status.5xx", "web-5d8f7c9b4-x2k9p", metric.Counter, 1, ""),
				m("router.bytes", "web-5d8f7c9b4-x2k9p", metric.Measure, 0, "bytes"), m("router.protocol.http1.1", "web-5d8f7c9b4-x2k9p", metric.Counter, 1, "")},
		},
		"Router 2.0 4xx with an unknown protocol value": {
			in:   line("heroku", "router", `at=info method=GET path="/x" host=h fwd=1.2.3.4 dyno=web.2 connect=0ms service=1ms status=404 bytes=9 protocol=http3.0 tls=true tls_version=tls1.2`),
			want: []metric.Measurement{m("router.connect", "web.2", metric.Measure, 0, "ms"), m("router.service", "web.2", metric.Measure, 1, "ms"), m("router.status.4xx", "web.2", metric.Counter, 1, ""), m("router.bytes", "web.2", metric.Measure, 9, "bytes")},
		},
		"logplex L10": {
			in:   line("heroku", "logplex", "Error L10 (output buffer overflow): 500 messages dropped since 2024-05-01T11:59:00+00:00."),
			want: []metric.Measurement{m("logplex.dropped", "", metric.Counter, 500, "")},
		},
		"logplex other error ignored": {
			in: line("heroku", "logplex", "Error L11 (tail buffer overflow): 12 messages dropped since 2024-05-01T11:59:00+00:00."),
		},
		"dyno R14": {
			in:   line("heroku", "web.1", "Error R14 (Memory quota exceeded)"),
			want: []metric.Measurement{m("dyno.error.R14", "web.1", metric.Counter, 1, "")},
		},
		"app line saying Error is not a dyno error": {
			in: line("app", "web.1", "Error R14 (Memory quota exceeded)"),
		},
		"heroku line with malformed error code": {
			in: line("heroku", "web.1", "Error connecting to database"),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := NewParser()
			got, err := p.Parse(nil, tc.in)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tc.wantErr != "" {
				var pe *ParseError
				if !errors.As(err, &pe) || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			}
			if !equalMeasurements(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

func equalMeasurements(a, b []metric.Measurement) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseAppendsToDst(t *testing.T) {
	p := NewParser()
	dst := []metric.Measurement{m("keep", "x", metric.Counter, 1, "")}
	dst, err := p.Parse(dst, line("app", "web.1", "count#a=2 source=web.9"))
	if err != nil {
		t.Fatal(err)
	}
	want := []metric.Measurement{m("keep", "x", metric.Counter, 1, ""), m("a", "web.9", metric.Counter, 2, "")}
	if !equalMeasurements(dst, want) {
		t.Errorf("got %v", dst)
	}
}

func TestBounds(t *testing.T) {
	long := func(n int) string { return strings.Repeat("n", n) }
	tests := map[string]struct {
		msg     string
		proc    string
		want    []metric.Measurement
		wantErr string
		stats   Stats
	}{
		"name at limit": {msg: "count#" + long(MaxNameLen), want: []metric.Measurement{m(long(MaxNameLen), "web.1", metric.Counter, 1, "")},
			stats: Stats{Lines: 1, Measurements: 1, Interned: 2}},
		"name over limit": {msg: "count#" + long(MaxNameLen+1), wantErr: "l2met: 1 rejected, first: count#nnnnnnnnnnnnnnnnnnnnnnnnnn: name longer than 200 bytes",
			stats: Stats{Lines: 1, Rejected: 1, TooLong: 1}},
		"unit at limit": {msg: "sample#a=1" + strings.Repeat("u", MaxUnitLen), want: []metric.Measurement{m("a", "web.1", metric.Sample, 1, strings.Repeat("u", MaxUnitLen))},
			stats: Stats{Lines: 1, Measurements: 1, Interned: 3}},
		"unit over limit": {msg: "sample#a=1" + strings.Repeat("u", MaxUnitLen+1), wantErr: "l2met: 1 rejected, first: sample#a: unit longer than 16 bytes",
			stats: Stats{Lines: 1, Rejected: 1, TooLong: 1}},
		"source over limit falls back to procid": {msg: "count#a source=" + long(MaxSourceLen+1), want: []metric.Measurement{m("a", "web.1", metric.Counter, 1, "")},
			wantErr: "l2met: 1 rejected, first: source: longer than 200 bytes", stats: Stats{Lines: 1, Measurements: 1, Rejected: 1, TooLong: 1, Interned: 2}},
		"procid over limit gives no source": {msg: "count#a", proc: long(MaxSourceLen + 1), want: []metric.Measurement{m("a", "", metric.Counter, 1, "")},
			wantErr: "l2met: 1 rejected, first: PROCID: longer than 200 bytes", stats: Stats{Lines: 1, Measurements: 1, Rejected: 1, TooLong: 1, Interned: 1}},
		"too many per line": {msg: strings.Repeat("count#a ", MaxPerLine+2), want: func() []metric.Measurement {
			var w []metric.Measurement
			for range MaxPerLine {
				w = append(w, m("a", "web.1", metric.Counter, 1, ""))
			}
			return w
		}(), wantErr: "l2met: 2 rejected, first: count#a: more than 256 metrics in the line", stats: Stats{Lines: 1, Measurements: MaxPerLine, Rejected: 2, TooMany: 2, Interned: 2}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := NewParser()
			proc := "web.1"
			if tc.proc != "" {
				proc = tc.proc
			}
			got, err := p.Parse(nil, line("app", proc, tc.msg))
			if (err == nil && tc.wantErr != "") || (err != nil && err.Error() != tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if !equalMeasurements(got, tc.want) {
				t.Errorf("got %d measurements %v", len(got), got)
			}
			if st := p.Stats(); st != tc.stats {
				t.Errorf("stats = %+v, want %+v", st, tc.stats)
			}
		})
	}
}

func TestInternBound(t *testing.T) {
	p := NewParser()
	var buf []metric.Measurement
	for i := range MaxInterned + 10 {
		var err error
		buf, err = p.Parse(buf[:0], Line{Msg: []byte("count#n" + itoa(i))})
		if err != nil || len(buf) != 1 || buf[0].Name != "n"+itoa(i) {
			t.Fatalf("line %d: %v %v", i, buf, err)
		}
	}
	st := p.Stats()
	if st.Interned != MaxInterned || st.InternOverflow != 10 {
		t.Errorf("stats = %+v", st)
	}
	// Strings already interned are still served from the table.
	known := Line{Msg: []byte("count#n1")}
	allocs := testing.AllocsPerRun(100, func() {
		buf, _ = p.Parse(buf[:0], known)
	})
	if allocs != 0 || buf[0].Name != "n1" {
		t.Errorf("allocs = %v, name %q", allocs, buf[0].Name)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestParseValue(t *testing.T) {
	tests := map[string]struct {
		v    float64
		unit string
		why  string
	}{
		"12ms": {12, "ms", ""}, "21.22MB": {21.22, "MB", ""}, "348836pages": {348836, "pages", ""},
		"8945836.0bytes": {8945836, "bytes", ""}, "4045592.0kB": {4045592, "kB", ""}, "99.5%": {99.5, "%", ""},
		"-3": {-3, "", ""}, "+3": {3, "", ""}, ".5": {0.5, "", ""}, "5.": {5, "", ""}, "1e3": {1000, "", ""},
		"1.5e-3s": {0.0015, "s", ""}, "2E+2": {200, "", ""}, "1e": {1, "e", ""}, "5em": {5, "em", ""},
		"0.1": {0.1, "", ""}, "123456789012345678": {123456789012345678, "", ""},
		"0.30000000000000004": {0.30000000000000004, "", ""},
		"NaN":                 {0, "", "is not a number"}, "Inf": {0, "", "is not a number"}, "-Inf": {0, "", "is not a number"},
		"abc": {0, "", "is not a number"}, ".": {0, "", "is not a number"}, "-": {0, "", "is not a number"},
		"1e999": {0, "", "is out of range"}, "0x10": {0, "", "has a unit that is not letters or %"},
		"1_000": {0, "", "has a unit that is not letters or %"}, "5ms/s": {0, "", "has a unit that is not letters or %"},
		"1.2.3": {0, "", "has a unit that is not letters or %"},
	}
	for in, tc := range tests {
		v, u, why := parseValue([]byte(in))
		if v != tc.v || string(u) != tc.unit || why != tc.why {
			t.Errorf("parseValue(%q) = %v %q %q, want %v %q %q", in, v, u, why, tc.v, tc.unit, tc.why)
		}
	}
}

func TestDynoFromOldSource(t *testing.T) {
	tests := map[string]string{
		"heroku.2808254.web.1.d97d0ea7-cf3d-411b-b453-d2943a50b456":    "web.1",
		"heroku.2808254.run.9157.d97d0ea7-cf3d-411b-b453-d2943a50b456": "run.9157",
		"heroku.2808254.web.1": "web.1",
		"heroku.x.web.1":       "heroku.x.web.1",
		"heroku.2808254.":      "heroku.2808254.",
		"web.1":                "web.1",
		"DATABASE":             "DATABASE",
	}
	for in, want := range tests {
		if got := string(dynoFromOldSource([]byte(in))); got != want {
			t.Errorf("dynoFromOldSource(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestInternCache checks that the direct-mapped cache in front of the
// interning table never returns another string than the one asked for, even
// when many strings share a slot, and that it serves interned strings only.
func TestInternCache(t *testing.T) {
	p := NewParser()
	var keys [][]byte
	for i := range 4 * internCacheSize {
		// Same length, first and last bytes for many of them: slot collisions.
		keys = append(keys, []byte("memory_"+itoa(i%97)+"_x"+itoa(i)+"_total"), []byte(itoa(i)))
	}
	// Every length a slot compares differently (packed, two words, words
	// plus the middle), each differing from the others in one byte only.
	for n := 1; n <= 40; n++ {
		for at := range n {
			k := bytes.Repeat([]byte{'a'}, n)
			k[at] = 'b'
			keys = append(keys, k)
		}
	}
	for round := range 3 {
		for _, k := range keys {
			if got := p.str(k); got != string(k) {
				t.Fatalf("round %d: str(%q) = %q", round, k, got)
			}
		}
	}
	if st := p.Stats(); st.Interned != uint64(len(keys)) || st.InternOverflow != 0 {
		t.Fatalf("stats = %+v, want %d interned", st, len(keys))
	}
	// Past MaxInterned a new string is allocated every time, not cached.
	full := NewParser()
	for i := range MaxInterned {
		full.str([]byte("n" + itoa(i)))
	}
	extra := []byte("not-interned")
	for range 3 {
		if got := full.str(extra); got != "not-interned" {
			t.Fatalf("str = %q", got)
		}
	}
	if st := full.Stats(); st.InternOverflow != 3 {
		t.Errorf("overflow = %d, want 3", st.InternOverflow)
	}
}

// checkValueMatchesStrconv fails when parseValue accepts num (a number
// without unit) with another bit pattern than strconv.ParseFloat gives, or
// accepts or rejects it differently from ParseFloat plus the finiteness check.
func checkValueMatchesStrconv(t *testing.T, num string) {
	t.Helper()
	v, u, why := parseValue([]byte(num))
	want, err := strconv.ParseFloat(num, 64)
	wantOK := err == nil && !math.IsInf(want, 0) && !math.IsNaN(want)
	if (why == "") != wantOK {
		t.Fatalf("parseValue(%q): why %q, strconv: %v %v", num, why, want, err)
	}
	if why == "" && (math.Float64bits(v) != math.Float64bits(want) || len(u) != 0) {
		t.Fatalf("parseValue(%q) = %v (%#x) unit %q, strconv = %v (%#x)", num, v, math.Float64bits(v), u, want, math.Float64bits(want))
	}
}

// TestParseValueMatchesStrconv proves the fast path (integer mantissa divided
// by an exact power of ten) bit-identical to strconv.ParseFloat over many
// values: every digit count and point position up to 19 digits, signs, zeros
// and exponents (which take the strconv path).
func TestParseValueMatchesStrconv(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + rng.IntN(10))
		}
		if n > 1 && rng.IntN(4) == 0 {
			b[0] = '0' // leading zeros count as digits
		}
		return string(b)
	}
	n := 0
	for nd := 1; nd <= 19; nd++ {
		for point := 0; point <= nd; point++ {
			for range 2000 {
				d := digits(nd)
				num := d[:point] + "." + d[point:]
				if point == nd && rng.IntN(2) == 0 {
					num = d // no point at all
				}
				switch rng.IntN(3) {
				case 1:
					num = "-" + num
				case 2:
					num = "+" + num
				}
				checkValueMatchesStrconv(t, num)
				n++
			}
		}
	}
	for _, num := range []string{"0", "-0", "+0", "0.0", "-0.000", ".5", "5.", "-.5", "9007199254740993",
		"999999999999999", "999999999999999.9", "0.000000000000001", "123456789012345", "1.23456789012345",
		"1e3", "1.5e-3", "-2E+10", "1e400", "1e-400", "4.9e-324", "1.7976931348623157e308", "0.1", "0.3", "2.675"} {
		checkValueMatchesStrconv(t, num)
	}
	if n < 100000 {
		t.Fatalf("only %d values", n)
	}
}

// FuzzParseValue checks parseValue against strconv.ParseFloat for any number
// it accepts: same bits, and the unit is the rest of the input.
func FuzzParseValue(f *testing.F) {
	for _, s := range []string{"12ms", "21.22MB", "-3", "0.99396", "8945836.0bytes", "1.5e3ms", "99.5%", "-0", ".5", "5.", "123456789012345.6"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, u, why := parseValue([]byte(s))
		if why != "" {
			return
		}
		num := s[:len(s)-len(u)]
		want, err := strconv.ParseFloat(num, 64)
		if err != nil || math.Float64bits(v) != math.Float64bits(want) || !validUnit(u) {
			t.Fatalf("parseValue(%q) = %v (%#x) unit %q; strconv(%q) = %v (%#x) %v", s, v, math.Float64bits(v), u, num, want, math.Float64bits(want), err)
		}
	})
}

func TestIsRouterLine(t *testing.T) {
	tests := map[string]struct {
		msg  string
		want bool
	}{
		"legacy router":      {`at=info method=GET path="/" host=ex.herokuapp.com request_id=5d1a fwd="1.2.3.4" dyno=web.1 connect=1ms service=18ms status=200 bytes=13 protocol=https`, true},
		"router 2.0":         {`at=info method=GET path="/" host=my-app.example.com request_id=69 fwd=138.68.186.89 dyno=web.1 connect=0ms service=0ms status=200 bytes=0 protocol=http2.0 tls=true tls_version=tls1.3`, true},
		"H14 empty fields":   {`at=error code=H14 desc="No web processes running" method=GET path="/" host=h fwd="1.2.3.4" dyno= connect= service= status=503 bytes=`, true},
		"warning":            {`at=warning code=H81 desc="Blank app" method=GET path="/" host=h dyno= connect= service= status=502 bytes=`, true},
		"app access log":     {`at=info method=GET path=/items status=200 duration=12ms`, false},
		"app metrics":        {`count#req=1 measure#db.latency=4ms`, false},
		"fields not leading": {`msg="x" at=info method=GET connect=1ms service=2ms status=200`, false},
		"empty":              {``, false},
	}
	for name, tt := range tests {
		if got := IsRouterLine([]byte(tt.msg)); got != tt.want {
			t.Errorf("%s: IsRouterLine = %v, want %v", name, got, tt.want)
		}
	}
}

// TestRouterMaxPerLine: a router line repeating its fields yields at most
// MaxPerLine measurements; the rest are rejected and counted.
func TestRouterMaxPerLine(t *testing.T) {
	p := NewParser()
	msg := "at=info dyno=web.1" + strings.Repeat(" status=200", MaxPerLine+5)
	ms, err := p.Parse(nil, line("heroku", "router", msg))
	var pe *ParseError
	if len(ms) != MaxPerLine || !errors.As(err, &pe) || pe.Rejected != 5 || p.Stats().TooMany != 5 {
		t.Fatalf("%d measurements, err %v, stats %+v", len(ms), err, p.Stats())
	}
}
