package logplex

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// scriptReader hands out its chunks one Read at a time, as a network
// connection delivers the sender's writes. A Read after the last chunk is the
// Read that would block on a live stream: it is counted in overReads and
// reports io.EOF so the test does not hang.
type scriptReader struct {
	chunks    []string
	overReads int
}

func (r *scriptReader) Read(b []byte) (int, error) {
	if len(r.chunks) == 0 {
		r.overReads++
		return 0, io.EOF
	}
	n := copy(b, r.chunks[0])
	if r.chunks[0] = r.chunks[0][n:]; r.chunks[0] == "" {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

func bytesOf(s string) []string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i : i+1]
	}
	return out
}

// TestScannerNoReadAhead checks which frames Next returns from the chunks
// delivered so far, and whether it had to call Read once more (the Read that
// blocks on a quiet connection) to do so.
func TestScannerNoReadAhead(t *testing.T) {
	const heroku = "<190>1 2024-05-01T12:00:00.2Z d.7f3a1c app web.1 - - count#req=1"
	lf := frame(heroku)                                  // length counts the trailing LF, as Logplex writes
	rfc := fmt.Sprintf("%d %s", len(heroku), heroku)     // RFC 6587 sender: no LF
	full := "9 <1>abcdef" + "9 <1>abcdef" + "8 <1>abcde" // exactly fills a 32-byte buffer
	split := func(f string) []string { i := strings.IndexByte(f, ' ') + 1; return []string{f[:i], f[i:]} }
	tests := map[string]struct {
		chunks   []string
		maxFrame int
		want     []string
		overRead bool // Next had to read past the chunks to return want
	}{
		"LF frame in one write":              {[]string{lf}, 0, []string{heroku}, false},
		"LF frame, prefix written alone":     {split(lf), 0, []string{heroku}, false},
		"LF frame, one byte per read":        {bytesOf(lf), 0, []string{heroku}, false},
		"LF frames, two in one write":        {[]string{lf + lf}, 0, []string{heroku, heroku}, false},
		"LF frame split mid-message":         {[]string{lf[:30], lf[30:]}, 0, []string{heroku}, false},
		"newline-delimited frame":            {[]string{heroku + "\n"}, 0, []string{heroku}, false},
		"no LF, one write":                   {[]string{rfc}, 0, []string{heroku}, false},
		"no LF, prefix written alone":        {split(rfc), 0, []string{heroku}, false},
		"no LF, two in one write":            {[]string{rfc + rfc}, 0, []string{heroku, heroku}, false},
		"no LF, after an LF frame":           {[]string{lf, rfc}, 0, []string{heroku, heroku}, false},
		"no LF, split mid-message":           {[]string{rfc[:30], rfc[30:]}, 0, []string{heroku}, true},
		"no LF, one byte per read":           {bytesOf("5 <1>ab"), 0, []string{"<1>ab"}, true},
		"no LF, read filled the buffer":      {[]string{full}, 10, []string{"<1>abcdef", "<1>abcdef", "<1>abcde"}, true},
		"no LF, next frame already read":     {[]string{"5 <1>ab3 <2>"}, 0, []string{"<1>ab", "<2>"}, false},
		"no LF, next prefix cut short":       {[]string{"5 <1>ab1"}, 0, []string{"<1>ab"}, true},
		"no LF, misaligned in buffered data": {[]string{"4 <1>ab\n5 <2>c\n"}, 0, []string{"error: logplex: frame 1 at byte 0: length 4 does not end at a frame boundary", "<2>c"}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := &scriptReader{chunks: tc.chunks}
			s := NewScanner(r, tc.maxFrame)
			var got []string
			for range len(tc.want) {
				msg, err := s.Next()
				switch {
				case errors.Is(err, ErrBadFrame):
					got = append(got, "error: "+err.Error())
				case err != nil:
					t.Fatalf("after %q: Next error %v", got, err)
				default:
					got = append(got, string(msg))
				}
			}
			if !equal(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
			if r.overReads > 1 {
				t.Errorf("%d Reads after the end of input", r.overReads)
			}
			if over := r.overReads > 0; over != tc.overRead {
				t.Errorf("read past the delivered chunks: %v, want %v", over, tc.overRead)
			}
		})
	}
}

// TestScannerWriteBoundaryException documents the cost of accepting a frame
// without LF at the end of a write: a length that is too short by exactly the
// rest of the write goes unnoticed, and that rest is reported as the next,
// malformed frame before the Scanner resynchronises.
func TestScannerWriteBoundaryException(t *testing.T) {
	r := &scriptReader{chunks: []string{"5 <1>ab", "c\n5 <2>d\n"}}
	got := scanAll(t, NewScanner(r, 0))
	want := []string{"<1>ab", "error: logplex: frame 2 at byte 7: frame starts with 'c', want a length or '<'", "<2>d"}
	if !equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// TestScannerPipe reads from an io.Pipe whose writer stays open, as a quiet
// syslog connection does: each frame must come out of Next while the next
// Read would block.
func TestScannerPipe(t *testing.T) {
	const msg = "<14>1 2024-05-01T12:00:08.5Z d.2b0d3a6b app web.1 - - count#req=1"
	pr, pw := io.Pipe()
	defer pr.Close()
	s := NewScanner(pr, 0)
	for _, write := range []string{frame(msg), fmt.Sprintf("%d %s", len(msg), msg), msg + "\r\n"} {
		werr := make(chan error, 1)
		go func() {
			_, err := io.WriteString(pw, write)
			werr <- err
		}()
		type result struct {
			msg string
			err error
		}
		done := make(chan result, 1)
		go func() {
			m, err := s.Next()
			done <- result{string(m), err}
		}()
		select {
		case res := <-done:
			if res.err != nil || res.msg != msg {
				t.Fatalf("after writing %q: Next = %q, %v; want %q", write, res.msg, res.err, msg)
			}
			if err := <-werr; err != nil {
				t.Fatalf("write: %v", err)
			}
		case <-time.After(5 * time.Second):
			pw.Close() // unblock Next so the goroutine ends
			<-done
			t.Fatalf("after writing %q: Next still waiting for more input after 5s", write)
		}
	}
	pw.Close()
	if _, err := s.Next(); err != io.EOF {
		t.Errorf("Next after the writer closed = %v, want io.EOF", err)
	}
	if st := s.Stats(); st.Frames != 3 || st.BadFrames != 0 {
		t.Errorf("stats = %+v", st)
	}
}
