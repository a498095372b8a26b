package input

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadBody(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		limit  int
		n      int64
		want   string
		err    error
		maxCap int // the buffer never grows past this
	}{
		{"declared length", "hello", 10, 5, "hello", nil, 6},
		{"unknown length", "hello", 10, -1, "hello", nil, 11},
		{"at the limit", "0123456789", 10, -1, "0123456789", nil, 11},
		{"over the limit", "0123456789x", 10, -1, "0123456789x", ErrTooLarge, 11},
		{"shorter than declared", "hel", 10, 5, "hel", io.ErrUnexpectedEOF, 6},
		{"empty", "", 10, 0, "", nil, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One byte per Read: the growth path runs on every call.
			got, err := ReadBody(nil, iotest.OneByteReader(strings.NewReader(tc.body)), tc.limit, tc.n, 4)
			if string(got) != tc.want || !errors.Is(err, tc.err) {
				t.Errorf("ReadBody = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
			if c := cap(got); c > (tc.maxCap+3)/4*4 {
				t.Errorf("buffer grew to %d bytes for a %d-byte body (limit %d, declared %d)", c, len(tc.body), tc.limit, tc.n)
			}
		})
	}
	// A reader's error is returned as is, with what was read before it.
	boom := errors.New("connection reset")
	got, err := ReadBody(nil, io.MultiReader(strings.NewReader("ab"), iotest.ErrReader(boom)), 10, -1, 4)
	if string(got) != "ab" || !errors.Is(err, boom) {
		t.Errorf("ReadBody with a failing reader = %q, %v; want \"ab\", %v", got, err, boom)
	}
	// The buffer passed in is reused when it has room.
	buf := make([]byte, 0, 64)
	got, _ = ReadBody(buf, strings.NewReader("reuse"), 100, 5, 4)
	if &got[0] != &buf[:1][0] {
		t.Error("ReadBody did not reuse the buffer it was given")
	}
}
