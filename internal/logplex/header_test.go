package logplex

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// hdr is Header with strings, for readable expectations.
type hdr struct {
	Priority                         int
	Time                             string // RFC3339Nano in UTC, or "" for zero
	Hostname, AppName, ProcID, MsgID string
}

func toHdr(h Header) hdr {
	ts := ""
	if !h.Time.IsZero() {
		ts = h.Time.Format(time.RFC3339Nano)
	}
	return hdr{h.Priority, ts, string(h.Hostname), string(h.AppName), string(h.ProcID), string(h.MsgID)}
}

// parseCase is one header-parsing case: the header and message wanted, or
// the error.
type parseCase struct {
	in      string
	want    hdr
	msg     string
	wantErr string
}

// runParse checks parse against each case; errors must wrap ErrHeader and
// times be in UTC.
func runParse(t *testing.T, parse func([]byte) (Header, []byte, error), tests map[string]parseCase) {
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h, msg, err := parse([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || !errors.Is(err, ErrHeader) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := toHdr(h); got != tc.want {
				t.Errorf("header = %+v, want %+v", got, tc.want)
			}
			if string(msg) != tc.msg {
				t.Errorf("msg = %q, want %q", msg, tc.msg)
			}
			if h.Time.Location() != time.UTC {
				t.Errorf("location = %v", h.Time.Location())
			}
		})
	}
}

func TestParseMessage(t *testing.T) {
	runParse(t, ParseMessage, map[string]parseCase{
		"heroku router": {
			in:   `<158>1 2024-05-01T12:00:00.123456+00:00 host heroku router - at=info path="/" status=200`,
			want: hdr{158, "2024-05-01T12:00:00.123456Z", "host", "heroku", "router", ""},
			msg:  `at=info path="/" status=200`,
		},
		"heroku dyno line starting with dash is kept": {
			in:   `<190>1 2024-05-01T12:00:00Z host app web.1 - - [INFO] started`,
			want: hdr{190, "2024-05-01T12:00:00Z", "host", "app", "web.1", ""},
			msg:  `- [INFO] started`,
		},
		"heroku dyno line starting with bracket is kept": {
			in:   `<190>1 2024-05-01T12:00:00Z host app web.1 - [INFO] started`,
			want: hdr{190, "2024-05-01T12:00:00Z", "host", "app", "web.1", ""},
			msg:  `[INFO] started`,
		},
		"rfc5424 nil SD": {
			in:   `<14>1 2024-05-01T12:00:08.5Z d.2b0d3a6b app web.1 - - count#req=1`,
			want: hdr{14, "2024-05-01T12:00:08.5Z", "d.2b0d3a6b", "app", "web.1", ""},
			msg:  `count#req=1`,
		},
		"rfc5424 SD elements with escapes": {
			in:   `<14>1 2024-05-01T14:00:08.5+02:00 d.x app web.1 ID47 [origin ip="10.0.0.1"][meta x="a \"b\" ]"] count#req=2`,
			want: hdr{14, "2024-05-01T12:00:08.5Z", "d.x", "app", "web.1", "ID47"},
			msg:  `count#req=2`,
		},
		"rfc5424 SD only": {
			in:   `<14>1 - d.x app web.1 - [a]`,
			want: hdr{14, "", "d.x", "app", "web.1", ""},
			msg:  ``,
		},
		"rfc5424 SD missing: lenient": {
			in:   `<14>1 - d.x app web.1 - count#a=1`,
			want: hdr{14, "", "d.x", "app", "web.1", ""},
			msg:  `count#a=1`,
		},
		"rfc5424 malformed SD taken as MSG": {
			in:   `<14>1 - d.x app web.1 - [not sd] x`,
			want: hdr{14, "", "d.x", "app", "web.1", ""},
			msg:  `[not sd] x`,
		},
		"BOM removed": {
			in:   "<14>1 - d.x app web.1 - - \xEF\xBB\xBFhello",
			want: hdr{14, "", "d.x", "app", "web.1", ""},
			msg:  "hello",
		},
		"nil fields": {
			in:   `<0>1 - - - - -`,
			want: hdr{0, "", "", "", "", ""},
			msg:  ``,
		},
		"negative offset": {
			in:   `<13>12 2024-02-29T23:30:00.000000001-01:30 host app run.9157 - x`,
			want: hdr{13, "2024-03-01T01:00:00.000000001Z", "host", "app", "run.9157", ""},
			msg:  `x`,
		},
		"no MSG after MSGID": {
			in:   `<13>1 - host app web.1 -`,
			want: hdr{13, "", "host", "app", "web.1", ""},
		},
		"empty":            {in: ``, wantErr: "logplex: malformed header: missing '<' of PRI at byte 0"},
		"PRI too big":      {in: `<192>1 - h a p - m`, wantErr: "logplex: malformed header: bad PRI at byte 4"},
		"PRI four digits":  {in: `<0001>1 - h a p - m`, wantErr: "logplex: malformed header: bad PRI at byte 5"},
		"PRI unterminated": {in: `<13`, wantErr: "logplex: malformed header: bad PRI at byte 3"},
		"VERSION 0":        {in: `<13>0 - h a p - m`, wantErr: "logplex: malformed header: bad VERSION at byte 5"},
		"VERSION missing":  {in: `<13> - h a p - m`, wantErr: "logplex: malformed header: bad VERSION at byte 4"},
		"RFC 3164":         {in: `<13>Oct 11 22:14:15 host app: m`, wantErr: "logplex: malformed header: bad VERSION at byte 4"},
		"bad timestamp":    {in: `<13>1 2024-13-01T00:00:00Z host a p - m`, wantErr: "logplex: malformed header: bad TIMESTAMP at byte 6"},
		"short header":     {in: `<13>1 - host app`, wantErr: "logplex: malformed header: message ends in APP-NAME at byte 16"},
		"double space":     {in: `<13>1 -  host app web.1 - m`, wantErr: "logplex: malformed header: empty HOSTNAME at byte 8"},
	})
}

func TestParseMessageNoSecretInError(t *testing.T) {
	const token = "d.2b0d3a6b-1111-2222-3333-444455556666"
	for _, in := range []string{"<13>1 bad " + token + " app", "<13>1 - " + token, "<13>1 - " + token + " app web.1"} {
		if _, _, err := ParseMessage([]byte(in)); err == nil || strings.Contains(err.Error(), "2b0d3a6b") {
			t.Errorf("ParseMessage(%q) error = %v", in, err)
		}
	}
}

func TestParseText(t *testing.T) {
	runParse(t, ParseText, map[string]parseCase{
		"app line":     {in: `2024-05-01T12:00:00.123456+00:00 app[web.1]: count#req=1`, want: hdr{Time: "2024-05-01T12:00:00.123456Z", AppName: "app", ProcID: "web.1"}, msg: `count#req=1`},
		"router":       {in: `2024-05-01T12:00:00+00:00 heroku[router]: at=info status=200`, want: hdr{Time: "2024-05-01T12:00:00Z", AppName: "heroku", ProcID: "router"}, msg: `at=info status=200`},
		"no proc":      {in: `2024-05-01T12:00:00Z app: x`, want: hdr{Time: "2024-05-01T12:00:00Z", AppName: "app"}, msg: `x`},
		"empty msg":    {in: `2024-05-01T12:00:00Z app[web.1]:`, want: hdr{Time: "2024-05-01T12:00:00Z", AppName: "app", ProcID: "web.1"}, msg: ``},
		"no space":     {in: `2024-05-01T12:00:00Z`, wantErr: "logplex: malformed header: no space after timestamp at byte 20"},
		"bad time":     {in: `2024-05-01 12:00 app[web.1]: x`, wantErr: "logplex: malformed header: bad timestamp at byte 0"},
		"no colon":     {in: `2024-05-01T12:00:00Z app[web.1] x`, wantErr: "logplex: malformed header: missing ':' after source at byte 31"},
		"open bracket": {in: `2024-05-01T12:00:00Z app[web.1 x`, wantErr: "logplex: malformed header: bad process name (want [proc]) at byte 25"},
		"no source":    {in: `2024-05-01T12:00:00Z hello world`, wantErr: "logplex: malformed header: bad source (want app[proc]:) at byte 21"},
	})
}

func TestParseAny(t *testing.T) {
	tests := map[string]struct {
		in   string
		want hdr
		msg  string
	}{
		"syslog":      {`<13>1 - host app web.1 - m`, hdr{Priority: 13, Hostname: "host", AppName: "app", ProcID: "web.1"}, "m"},
		"text":        {`2024-05-01T12:00:00Z app[web.1]: m`, hdr{Time: "2024-05-01T12:00:00Z", AppName: "app", ProcID: "web.1"}, "m"},
		"bare":        {`count#req=1`, hdr{}, "count#req=1"},
		"bad syslog":  {`<13>x count#a=1`, hdr{}, "<13>x count#a=1"},
		"digit start": {`200 OK count#a=1`, hdr{}, "200 OK count#a=1"},
		"empty":       {``, hdr{}, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h, msg := ParseAny([]byte(tc.in))
			if got := toHdr(h); got != tc.want || string(msg) != tc.msg {
				t.Errorf("got %+v %q, want %+v %q", got, msg, tc.want, tc.msg)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	tests := map[string]string{ // input → RFC3339Nano UTC, "" for rejected
		"2024-05-01T12:00:00.123456+00:00":   "2024-05-01T12:00:00.123456Z",
		"2024-05-01T12:00:00Z":               "2024-05-01T12:00:00Z",
		"2024-05-01t12:00:00z":               "2024-05-01T12:00:00Z",
		"2024-05-01T12:00:00.1234567891234Z": "2024-05-01T12:00:00.123456789Z",
		"2024-05-01T00:30:00+05:45":          "2024-04-30T18:45:00Z",
		"2024-12-31T23:59:59-00:01":          "2025-01-01T00:00:59Z",
		"1970-01-01T00:00:00Z":               "1970-01-01T00:00:00Z",
		"0001-01-01T00:00:00Z":               "0001-01-01T00:00:00Z",
		"1600-02-29T00:00:00Z":               "1600-02-29T00:00:00Z",
		"2016-12-31T23:59:60Z":               "2017-01-01T00:00:00Z",
		"2023-02-29T00:00:00Z":               "",
		"1900-02-29T00:00:00Z":               "",
		"2024-04-31T00:00:00Z":               "",
		"2024-05-01T24:00:00Z":               "",
		"2024-05-01T12:00:00":                "",
		"2024-05-01T12:00:00.Z":              "",
		"2024-05-01T12:00:00+0000":           "",
		"2024-05-01T12:00:00+24:00":          "",
		"2024-05-01T12:00:00Zjunk":           "",
		"2024-05-01 12:00:00Z":               "",
		"+024-05-01T12:00:00Z":               "",
		"-":                                  "",
	}
	for in, want := range tests {
		got, ok := parseTime([]byte(in))
		s := ""
		if ok {
			s = got.Format(time.RFC3339Nano)
		}
		if s != want {
			t.Errorf("parseTime(%q) = %q, want %q", in, s, want)
		}
	}
}

// seedLines returns the real-shaped messages of testdata/messages.txt.
func seedLines(tb testing.TB) [][]byte {
	f, err := os.Open("testdata/messages.txt")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, []byte(sc.Text()))
	}
	return out
}

func FuzzParseMessage(f *testing.F) {
	for _, l := range seedLines(f) {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, msg, err := ParseMessage(b)
		if err != nil {
			if !errors.Is(err, ErrHeader) {
				t.Fatal(err)
			}
			return
		}
		if h.Priority < 0 || h.Priority > MaxPriority || len(msg) > len(b) {
			t.Fatalf("bad result %+v %q", h, msg)
		}
		if !h.Time.IsZero() && h.Time.Location() != time.UTC {
			t.Fatal("time not in UTC")
		}
		ParseAny(b)
	})
}

func FuzzParseText(f *testing.F) {
	for _, l := range seedLines(f) {
		if _, msg, err := ParseMessage(l); err == nil {
			f.Add(append([]byte("2024-05-01T12:00:00.123456+00:00 app[web.1]: "), msg...))
		}
	}
	f.Add([]byte("2024-05-01T12:00:00.123456+00:00 heroku[router]: at=info"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, msg, err := ParseText(b)
		if err != nil {
			if !errors.Is(err, ErrHeader) {
				t.Fatal(err)
			}
		} else if len(msg) > len(b) || h.Time.Location() != time.UTC {
			t.Fatalf("bad result %+v %q", h, msg)
		}
		ParseAny(b)
	})
}

// FuzzParseTime checks parseTime against time.Parse: whatever both accept must
// be the same instant.
func FuzzParseTime(f *testing.F) {
	f.Add("2024-05-01T12:00:00.123456+00:00")
	f.Add("2024-05-01T12:00:00Z")
	f.Add("2024-02-29T23:30:00.000000001-01:30")
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseTime([]byte(s))
		want, err := time.Parse(time.RFC3339Nano, s)
		if ok && err == nil && !got.Equal(want) {
			t.Fatalf("parseTime(%q) = %v, time.Parse = %v", s, got, want)
		}
		if ok && got.Location() != time.UTC {
			t.Fatal("not UTC")
		}
	})
}

func BenchmarkParseMessage(b *testing.B) {
	lines := seedLines(b)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for _, l := range lines {
			if _, _, err := ParseMessage(l); err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/line")
}

func BenchmarkParseText(b *testing.B) {
	line := []byte("2024-05-01T12:00:00.123456+00:00 app[web.1]: count#req=1 measure#db.latency=4ms")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseText(line); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseTime shows why parseTime exists: time.Parse is about three
// times slower and allocates a FixedZone for an offset that is neither the
// local zone's nor a whole number of hours (`+05:45`).
func BenchmarkParseTime(b *testing.B) {
	for _, ts := range []string{"2024-05-01T12:00:00.123456+00:00", "2024-05-01T14:00:00.123456+02:00", "2024-05-01T17:45:00.123456+05:45"} {
		b.Run("hand-written/"+ts[26:], func(b *testing.B) {
			in := []byte(ts)
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := parseTime(in); !ok {
					b.Fatal("rejected")
				}
			}
		})
		b.Run("stdlib/"+ts[26:], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				t, err := time.Parse(time.RFC3339Nano, ts)
				if err != nil {
					b.Fatal(err)
				}
				_ = t.UTC()
			}
		})
	}
}

func TestHeaderParsersDoNotAllocate(t *testing.T) {
	lines := seedLines(t)
	text := []byte("2024-05-01T12:00:00.123456+00:00 app[web.1]: count#req=1")
	bad := [][]byte{[]byte("<13>x count#a=1"), []byte("200 OK count#a=1"), []byte("count#a=1")}
	allocs := testing.AllocsPerRun(50, func() {
		for _, l := range lines {
			if _, _, err := ParseMessage(l); err != nil {
				t.Fatal(err)
			}
			ParseAny(l)
		}
		if _, _, err := ParseText(text); err != nil {
			t.Fatal(err)
		}
		for _, b := range bad {
			ParseAny(b) // the fallbacks to a bare MSG do not allocate either
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations, want 0", allocs)
	}
}

// naiveSpaces is the byte-by-byte reference for nextSpaces.
func naiveSpaces(b []byte, p int) (sp [5]int, ok bool) {
	k := 0
	for ; p < len(b); p++ {
		if b[p] == ' ' {
			sp[k] = p
			if k++; k == len(sp) {
				return sp, true
			}
		}
	}
	return sp, false
}

func TestNextSpaces(t *testing.T) {
	for _, s := range []string{"", " ", "     ", "a b c d e", "a b c d e ", "abcdefgh ijklmnop q r s t u",
		"\xa0\x20\xa0 !\x00 \x01\x20\xff ", "2024-05-01T12:00:00.123456+00:00 host heroku router - at=info",
		"        ", "!!!!!!!! !!!!!!! !!!!!!!!!! ! !"} {
		for p := 0; p <= len(s); p++ {
			var got [5]int
			ok := nextSpaces([]byte(s), p, &got)
			want, wantOK := naiveSpaces([]byte(s), p)
			if ok != wantOK || ok && got != want {
				t.Errorf("nextSpaces(%q, %d) = %v %v, want %v %v", s, p, got, ok, want, wantOK)
			}
		}
	}
}

func FuzzNextSpaces(f *testing.F) {
	for _, l := range seedLines(f) {
		f.Add(l, 0)
	}
	f.Fuzz(func(t *testing.T, b []byte, p int) {
		if p < 0 || p > len(b) {
			return
		}
		var got [5]int
		ok := nextSpaces(b, p, &got)
		want, wantOK := naiveSpaces(b, p)
		if ok != wantOK || ok && got != want {
			t.Fatalf("nextSpaces(%q, %d) = %v %v, want %v %v", b, p, got, ok, want, wantOK)
		}
	})
}

// TestParseMessageFastPathEdges pins results around the one-pass field split:
// error precedence when the timestamp is bad and a later field is too, and
// frames that end right after MSGID with or without a space.
func TestParseMessageFastPathEdges(t *testing.T) {
	tests := map[string]struct{ in, msg, err string }{
		"bad ts, empty host":      {in: `<13>1 2024-13-01T00:00:00Z  a p - m`, err: "logplex: malformed header: bad TIMESTAMP at byte 6"},
		"bad ts, short header":    {in: `<13>1 2024-13-01T00:00:00Z host app`, err: "logplex: malformed header: bad TIMESTAMP at byte 6"},
		"nil ts, empty procid":    {in: `<13>1 - host app  - m`, err: "logplex: malformed header: empty PROCID at byte 17"},
		"ends after MSGID":        {in: `<13>1 - host app web.1 -`},
		"ends after MSGID space":  {in: `<13>1 - host app web.1 - `},
		"empty MSGID at end":      {in: `<13>1 - host app web.1 `, err: "logplex: malformed header: empty MSGID at byte 23"},
		"msg with spaces":         {in: `<13>1 2024-05-01T12:00:00Z host app web.1 - a b  c`, msg: "a b  c"},
		"double space before msg": {in: `<13>1 - host app web.1 -  x`, msg: " x"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, msg, err := ParseMessage([]byte(tc.in))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || string(msg) != tc.msg {
				t.Fatalf("msg %q err %v, want %q", msg, err, tc.msg)
			}
		})
	}
}
