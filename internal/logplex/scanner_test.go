package logplex

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

// scanAll runs s to the end and returns each result as the message text or
// "error: " + the error text.
func scanAll(t testing.TB, s *Scanner) []string {
	t.Helper()
	var got []string
	for range 10000 {
		msg, err := s.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			var fe *FrameError
			if !errors.As(err, &fe) || !errors.Is(err, ErrBadFrame) {
				got = append(got, "fatal: "+err.Error())
				return got
			}
			got = append(got, "error: "+err.Error())
			continue
		}
		got = append(got, string(msg))
	}
	t.Fatal("scanner did not reach the end")
	return nil
}

func frame(msg string) string { return fmt.Sprintf("%d %s\n", len(msg)+1, msg) }

func TestScanner(t *testing.T) {
	const a, b, c = "<190>1 - host app web.1 - count#a=1", "<190>1 - host app web.2 - count#b=2", "<14>1 - d.x app web.1 - - c"
	tests := map[string]struct {
		body     string
		maxFrame int
		want     []string
	}{
		"empty":                        {"", 0, nil},
		"one frame":                    {frame(a), 0, []string{a}},
		"two frames":                   {frame(a) + frame(b), 0, []string{a, b}},
		"no trailing LF":               {"5 <1>ab" + "3 <2>", 0, []string{"<1>ab", "<2>"}},
		"blank lines between frames":   {"\r\n" + frame(a) + "\n\n" + frame(b) + "\n", 0, []string{a, b}},
		"newline delimited":            {a + "\n" + b + "\r\n" + c, 0, []string{a, b, c}},
		"mixed framing":                {frame(a) + b + "\n" + frame(c), 0, []string{a, b, c}},
		"embedded LF in counted frame": {"6 <1>a\nb", 0, []string{"<1>a\nb"}},
		"bad digits then good": {"12x " + a + "\n" + frame(b), 0, []string{
			"error: logplex: frame 1 at byte 0: length prefix has 'x' at byte 2", b}},
		"too many digits": {"1234567890 " + a + "\n" + frame(b), 0, []string{
			"error: logplex: frame 1 at byte 0: length prefix longer than 9 digits", b}},
		"zero length": {"0 " + a + "\n" + frame(b), 0, []string{
			"error: logplex: frame 1 at byte 0: length 0", b}},
		"garbage start": {"hello world\n" + frame(a), 0, []string{
			"error: logplex: frame 1 at byte 0: frame starts with 'h', want a length or '<'", a}},
		"oversize": {frame(a) + frame(strings.Repeat("x", 50)) + frame(b), 40, []string{
			a, "error: logplex: frame 2 at byte 39: length 51 exceeds the limit of 40 bytes", b}},
		"oversize line": {"<1>" + strings.Repeat("y", 60) + "\n" + "<2>ok\n", 40, []string{
			"error: logplex: frame 1 at byte 0: line longer than the limit of 40 bytes", "<2>ok"}},
		"oversize line without LF": {"<1>" + strings.Repeat("y", 60), 40, []string{
			"error: logplex: frame 1 at byte 0: line longer than the limit of 40 bytes"}},
		"length past end": {frame(a) + "70 <1>abc\n", 0, []string{
			a, "error: logplex: frame 2 at byte 39: length 70 exceeds remaining 7 bytes"}},
		"length past end hides good frames": {"90 <1>abc\n" + frame(a), 0, []string{
			"error: logplex: frame 1 at byte 0: length 90 exceeds remaining 46 bytes", a}},
		"prefix cut short": {frame(a) + "12", 0, []string{
			a, "error: logplex: frame 2 at byte 39: length prefix cut short by the end of input"}},
		"length too long, misaligned": {fmt.Sprintf("%d %s\n", len(a)+5, a) + frame(b) + frame(c), 0, []string{
			"error: logplex: frame 1 at byte 0: length 40 does not end at a frame boundary", b, c}},
		"length too short, misaligned": {fmt.Sprintf("%d %s\n", len(a)-3, a) + frame(b), 0, []string{
			"error: logplex: frame 1 at byte 0: length 32 does not end at a frame boundary", b}},
		"resync skips LF not followed by a frame": {"1x <1>a\nfoo\n12 bar\n" + frame(a), 0, []string{
			"error: logplex: frame 1 at byte 0: length prefix has 'x' at byte 1", a}},
		"resync to newline-delimited frame": {"1x\n<5>next\n", 0, []string{
			"error: logplex: frame 1 at byte 0: length prefix has 'x' at byte 1", "<5>next"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for _, mode := range []string{"whole", "one byte reads"} {
				var r io.Reader = strings.NewReader(tc.body)
				if mode != "whole" {
					r = iotest.OneByteReader(r)
				}
				got := scanAll(t, NewScanner(r, tc.maxFrame))
				if !equal(got, tc.want) {
					t.Errorf("%s:\n got %q\nwant %q", mode, got, tc.want)
				}
			}
		})
	}
}

func equal(a, b []string) bool {
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

func TestScannerDrainBody(t *testing.T) {
	body, err := os.ReadFile("testdata/drain.body")
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := os.ReadFile("testdata/messages.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimSuffix(string(msgs), "\n"), "\n")
	s := NewScanner(bytes.NewReader(body), 0)
	got := scanAll(t, s)
	if !equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	st := s.Stats()
	if st.Frames != uint64(len(want)) || st.Bytes != uint64(len(body)) || st.BadFrames != 0 || st.SkippedBytes != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestScannerBrokenBody(t *testing.T) {
	body, err := os.ReadFile("testdata/broken.body")
	if err != nil {
		t.Fatal(err)
	}
	msgs, _ := os.ReadFile("testdata/messages.txt")
	lines := strings.Split(string(msgs), "\n")
	s := NewScanner(bytes.NewReader(body), 0)
	got := scanAll(t, s)
	var errs, good []string
	for _, g := range got {
		if strings.HasPrefix(g, "error: ") {
			errs = append(errs, g)
		} else {
			good = append(good, g)
		}
	}
	if want := []string{lines[10], lines[0], lines[12], lines[14]}; !equal(good, want) {
		t.Errorf("good frames:\n got %q\nwant %q", good, want)
	}
	wantErr := []string{"frame 2 at", "frame 4 at", "frame 6 at", "frame 8 at"}
	if len(errs) != len(wantErr) {
		t.Fatalf("errors = %q", errs)
	}
	for i, w := range wantErr {
		if !strings.Contains(errs[i], w) {
			t.Errorf("error %d = %q, want %q", i, errs[i], w)
		}
	}
	st := s.Stats()
	if st.Frames != 4 || st.BadFrames != 4 || st.Misaligned != 2 || st.Truncated != 1 || st.Oversize != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestScannerReset(t *testing.T) {
	s := NewScanner(strings.NewReader("5 <1>a\n"), 0)
	if got := scanAll(t, s); !equal(got, []string{"<1>a"}) {
		t.Fatalf("got %q", got)
	}
	s.Reset(strings.NewReader("x\n5 <2>b\n"))
	want := []string{"error: logplex: frame 1 at byte 0: frame starts with 'x', want a length or '<'", "<2>b"}
	if got := scanAll(t, s); !equal(got, want) {
		t.Fatalf("after Reset got %q, want %q", got, want)
	}
	if st := s.Stats(); st.Frames != 2 || st.BadFrames != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestScannerReaderError(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader(frame("<1>a")+"40 <2>"), iotest.ErrReader(boom))
	s := NewScanner(r, 0)
	if msg, err := s.Next(); err != nil || string(msg) != "<1>a" {
		t.Fatalf("first Next = %q, %v", msg, err)
	}
	if _, err := s.Next(); err != boom {
		t.Fatalf("second Next error = %v, want %v", err, boom)
	}
}

func TestScannerGrowsToMaxFrame(t *testing.T) {
	big := "<1>" + strings.Repeat("z", 3*initialBuffer)
	body := frame(big) + frame("<2>small")
	s := NewScanner(iotest.HalfReader(strings.NewReader(body)), len(big)+1)
	if got := scanAll(t, s); !equal(got, []string{big, "<2>small"}) {
		t.Fatalf("got %d results", len(got))
	}
}

func FuzzScanner(f *testing.F) {
	for _, name := range []string{"testdata/drain.body", "testdata/broken.body"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("12x <1>a\n5 <2>b\n"))
	f.Add([]byte("<1>a\n<2>b"))
	f.Fuzz(func(t *testing.T, body []byte) {
		s := NewScanner(bytes.NewReader(body), 256)
		var total int
		for i := 0; ; i++ {
			if i > len(body)+1 {
				t.Fatal("more results than input bytes")
			}
			msg, err := s.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				if !errors.Is(err, ErrBadFrame) {
					t.Fatalf("unexpected error %v", err)
				}
				continue
			}
			if len(msg) > 256 {
				t.Fatalf("message of %d bytes exceeds maxFrame", len(msg))
			}
			total += len(msg)
		}
		st := s.Stats()
		if st.Bytes+st.SkippedBytes > uint64(len(body)) || total > len(body) {
			t.Fatalf("accounted for more bytes than read: %+v, %d of %d", st, total, len(body))
		}
	})
}

func BenchmarkScanner(b *testing.B) {
	body, err := os.ReadFile("testdata/drain.body")
	if err != nil {
		b.Fatal(err)
	}
	r := bytes.NewReader(body)
	s := NewScanner(r, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	frames := 0
	for b.Loop() {
		r.Reset(body)
		s.Reset(r)
		for {
			_, err := s.Next()
			if err != nil {
				break
			}
			frames++
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/frame")
}
