package emitter

import (
	"context"
	"errors"
	"math"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/testproc"
	metrics "github.com/rcrowley/go-metrics"
)

func TestParseStatsdLine(t *testing.T) {
	type want struct {
		name  string
		raw   string
		value float64
		typ   uint8
		rate  float64
		delta bool
	}
	tests := map[string]struct {
		line string
		want want
		err  string
	}{
		"counter":             {line: "req:1|c", want: want{"req", "1", 1, statsdCounter, 1, false}},
		"counter float":       {line: "bytes:0.5|c", want: want{"bytes", "0.5", 0.5, statsdCounter, 1, false}},
		"counter sample rate": {line: "req:1|c|@0.1", want: want{"req", "1", 1, statsdCounter, 0.1, false}},
		"timer":               {line: "db.query:12.5|ms", want: want{"db.query", "12.5", 12.5, statsdTimer, 1, false}},
		"timer rate":          {line: "db.query:3|ms|@0.5", want: want{"db.query", "3", 3, statsdTimer, 0.5, false}},
		"histogram":           {line: "size:512|h", want: want{"size", "512", 512, statsdHistogram, 1, false}},
		"gauge":               {line: "queue:7|g", want: want{"queue", "7", 7, statsdGauge, 1, false}},
		"gauge plus":          {line: "queue:+2|g", want: want{"queue", "+2", 2, statsdGauge, 1, true}},
		"gauge minus":         {line: "queue:-3.5|g", want: want{"queue", "-3.5", -3.5, statsdGauge, 1, true}},
		"set":                 {line: "users:alice|s", want: want{"users", "alice", 0, statsdSet, 1, false}},
		"tags ignored":        {line: "req:2|c|#env:prod,region:eu", want: want{"req", "2", 2, statsdCounter, 1, false}},
		"rate and tags":       {line: "req:2|c|@0.5|#env:prod", want: want{"req", "2", 2, statsdCounter, 0.5, false}},
		"exponent value":      {line: "x:1e3|c", want: want{"x", "1e3", 1000, statsdCounter, 1, false}},
		"name with colon":     {line: "a:b:1|c", err: `statsd: value "b:1" is not a number`},
		"no colon":            {line: "req|c", err: "statsd: no ':' after the name"},
		"empty name":          {line: ":1|c", err: "statsd: empty name"},
		"space in name":       {line: "my req:1|c", err: `statsd: name has byte ' '`},
		"no type":             {line: "req:1", err: "statsd: no '|' before the type"},
		"unknown type":        {line: "req:1|x", err: `statsd: unknown type "x"`},
		"empty type":          {line: "req:1|", err: `statsd: unknown type ""`},
		"empty value":         {line: "req:|c", err: "statsd: empty value"},
		"not a number":        {line: "req:abc|c", err: `statsd: value "abc" is not a number`},
		"NaN":                 {line: "req:NaN|g", err: `statsd: value "NaN" is not a number`},
		"Inf":                 {line: "req:Inf|g", err: `statsd: value "Inf" is not a number`},
		"hex":                 {line: "req:0x10|c", err: `statsd: value "0x10" is not a number`},
		"zero rate":           {line: "req:1|c|@0", err: `statsd: sample rate "0" is not in (0, 1]`},
		"rate above 1":        {line: "req:1|c|@2", err: `statsd: sample rate "2" is not in (0, 1]`},
		"bad rate":            {line: "req:1|c|@x", err: `statsd: sample rate "x" is not in (0, 1]`},
		"unknown section":     {line: "req:1|c|zzz", err: `statsd: unknown section "zzz"`},
		"negative timer":      {line: "t:-1|ms", err: `statsd: timer value "-1" is out of range`},
		"huge counter":        {line: "c:1e300|c", err: `statsd: value "1e300" is out of range`},
		"long name":           {line: strings.Repeat("n", 256) + ":1|c", err: "statsd: name of 256 bytes is longer than 255"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			l, err := parseStatsdLine([]byte(tc.line))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error = %v, want %s", err, tc.err)
				}
				if !errors.Is(err, ErrStatsd) {
					t.Error("error does not wrap ErrStatsd")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := want{string(l.name), string(l.raw), l.value, l.typ, l.rate, l.delta}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseNumberMatchesParseFloat(t *testing.T) {
	for _, s := range []string{"0", "1", "-1", "+1", "12.5", ".5", "5.", "0.1", "123456789012345", "1234567890123456789",
		"0.000000000000001", "999999999999999.9", "3.14159265358979", "-0.0", "1e3", "2E-2"} {
		got, ok := parseNumber([]byte(s))
		want, err := strconv.ParseFloat(s, 64)
		if !ok || err != nil || got != want || math.Signbit(got) != math.Signbit(want) {
			t.Errorf("parseNumber(%q) = %v, %v; ParseFloat = %v, %v", s, got, ok, want, err)
		}
	}
	for _, s := range []string{"", "-", "+", ".", "1.2.3", "1-2", "0x1p3", "1_000", "inf", "nan", "1e400"} {
		if v, ok := parseNumber([]byte(s)); ok {
			t.Errorf("parseNumber(%q) = %v, want rejection", s, v)
		}
	}
}

func TestHandleStatsd(t *testing.T) {
	r := metrics.NewRegistry()
	metrics.GetOrRegisterGauge("taken", r).Update(1) // an int gauge: statsd counters may not use the name
	e := newTest(t, Config{Registry: r})
	e.HandleStatsd([]byte("req:1|c\nreq:1|c|@0.1\nbad line\nreq:2|c\r\n\n" +
		"db:10|ms\ndb:20|ms|@0.5\nsize:0.25|h\nsize:0.75|h\n" +
		"q:10|g\nq:+5|g\nq:-3|g\n" +
		"u:alice|s\nu:bob|s\nu:alice|s\n" +
		"taken:1|c\nreq:1|ms\nfrac:0.4|c\nfrac:0.4|c\nfrac:0.4|c\n"))
	e.HandleStatsd([]byte("req:zzz|c"))
	want := "at=metrics count#db.count=2 sample#db.min=10ms sample#db.mean=15ms sample#db.median=15ms sample#db.perc95=19.5ms sample#db.perc99=19.9ms sample#db.max=20ms " +
		"count#frac=1 sample#q=12 count#req=13 " +
		"count#size.count=2 sample#size.min=0.25 sample#size.mean=0.5 sample#size.median=0.5 sample#size.perc95=0.725 sample#size.perc99=0.745 sample#size.max=0.75 " +
		"sample#taken=1 count#u=2\n"
	if got := emit(t, e); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	st := e.Stats().Statsd
	wantSt := StatsdStats{Packets: 2, Lines: 20, Malformed: 2, TypeConflicts: 2}
	if st != wantSt {
		t.Errorf("stats = %+v, want %+v", st, wantSt)
	}
	// The fraction carried: 1.2 so far printed as 1; two more 0.4 make 2.0 → 1 more.
	e.HandleStatsd([]byte("frac:0.4|c\nfrac:0.4|c\nq:-2|g"))
	if got, want := emit(t, e), "at=metrics count#db.count=0 count#frac=1 sample#q=10 count#req=0 count#size.count=0 sample#taken=1 count#u=0\n"; got != want {
		t.Errorf("second emission\n got %q\nwant %q", got, want)
	}
}

func TestSetOverflow(t *testing.T) {
	e := newTest(t, Config{})
	var p []byte
	for i := range MaxSetSize + 5 {
		p = append(p, "s:"...)
		p = strconv.AppendInt(p, int64(i), 10)
		p = append(p, "|s\n"...)
	}
	e.HandleStatsd(p)
	if got, want := emit(t, e), "at=metrics count#s="+strconv.Itoa(MaxSetSize)+"\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := e.Stats().Statsd.SetOverflow; got != 5 {
		t.Errorf("SetOverflow = %d, want 5", got)
	}
}

// TestStatsdListener sends UDP packets to the listener and checks they leave
// in Run's final emission: nothing sent before shutdown is lost.
func TestStatsdListener(t *testing.T) {
	r := metrics.NewRegistry()
	tk := newManualTicker()
	var out testproc.LimitedBuffer
	e := newTest(t, Config{Registry: r, Writer: &out, StatsdAddr: "127.0.0.1:0", NewTicker: tk.new})
	addr := e.StatsdAddr()
	if addr == nil {
		t.Fatal("no statsd address")
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- e.Run(ctx) }()

	conn, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const packets = 50
	for range packets {
		if _, err := conn.Write([]byte("hits:1|c\nlat:2|ms\nnope\n")); err != nil {
			t.Fatal(err)
		}
	}
	// Packets still queued in the socket at shutdown are read before the
	// final emission, so cancel right away.
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := out.String()
	want := "at=metrics count#hits=50 count#lat.count=50 sample#lat.min=2ms sample#lat.mean=2ms sample#lat.median=2ms sample#lat.perc95=2ms sample#lat.perc99=2ms sample#lat.max=2ms\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if st := e.Stats().Statsd; st.Packets != packets || st.Malformed != packets {
		t.Errorf("stats = %+v, want %d packets and %d malformed", st, packets, packets)
	}
	// The socket is closed.
	if _, err := net.ListenPacket("udp", addr.String()); err != nil {
		t.Errorf("port still bound after Run: %v", err)
	}
}

func TestStatsdCloseWithoutRun(t *testing.T) {
	e := newTest(t, Config{StatsdAddr: "127.0.0.1:0"})
	addr := e.StatsdAddr().String()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("port still bound after Close: %v", err)
	}
	c.Close()
	if newTest(t, Config{}).StatsdAddr() != nil {
		t.Error("StatsdAddr without a listener is not nil")
	}
	_ = time.Second
}

func FuzzParseStatsd(f *testing.F) {
	for _, s := range []string{"req:1|c", "req:1|c|@0.1", "db:12.5|ms", "q:+2|g", "u:x|s", "a:1|h|#t:v", "x:1e3|c",
		"bad", ":|", "a:|c|@", "a:1|c|@0.5|#a|#b", "a:-0|g", "hits:1|c|@5e-324", "big:9007199254740992|c|@0.0000001"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := parseStatsdLine(b)
		if err != nil {
			if !errors.Is(err, ErrStatsd) {
				t.Fatalf("error %v does not wrap ErrStatsd", err)
			}
			return
		}
		if len(l.name) == 0 || len(l.name) > MaxStatsdNameLen || len(l.raw) == 0 {
			t.Fatalf("accepted %q with name %q raw %q", b, l.name, l.raw)
		}
		if math.IsNaN(l.value) || math.IsInf(l.value, 0) || !(l.rate > 0 && l.rate <= 1) {
			t.Fatalf("accepted %q with value %v rate %v", b, l.value, l.rate)
		}
		if l.typ != statsdSet {
			want, err := strconv.ParseFloat(string(l.raw), 64)
			if err != nil || want != l.value {
				t.Fatalf("%q: value %v, ParseFloat says %v, %v", b, l.value, want, err)
			}
		}
		// Applying any accepted line must not panic, and a counter stays
		// within twice the bound after two lines (issue 13: a tiny sample
		// rate made it -9223372036854775808 for good).
		br := newStatsdBridge(metrics.NewRegistry())
		br.handlePacket(b)
		br.handlePacket(b)
		for _, c := range br.cache {
			if c.counter != nil && (c.counter.Count() > 2*MaxStatsdValue || c.counter.Count() < -2*MaxStatsdValue || math.IsNaN(c.frac)) {
				t.Fatalf("%q: counter %d, carried fraction %v", b, c.counter.Count(), c.frac)
			}
		}
	})
}
