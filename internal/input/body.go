package input

import (
	"errors"
	"io"
)

// ErrTooLarge is returned by ReadBody for a body over its limit.
var ErrTooLarge = errors.New("body too large")

// ReadBody appends all of rd to b, failing with ErrTooLarge past limit bytes
// and with io.ErrUnexpectedEOF when fewer than n bytes arrive. n is the
// declared length when known (>= 0, at most limit): the buffer grows only as
// bytes arrive, doubling from quantum and rounded up to a multiple of it, and
// never past n+1 bytes, so a declared length reserves nothing. The returned
// slice is b grown, also on error (for reuse). The drain and the OTLP
// receiver read their request bodies with it.
func ReadBody(b []byte, rd io.Reader, limit int, n int64, quantum int) ([]byte, error) {
	want := limit + 1 // one more than allowed detects an overlong body, or the EOF without growing
	if n >= 0 {
		want = min(want, int(n)+1)
	}
	for {
		if len(b) == cap(b) {
			c := max(min(max(2*cap(b), quantum), (want+quantum-1)/quantum*quantum), len(b)+1)
			b = append(make([]byte, 0, c), b...)
		}
		k, err := rd.Read(b[len(b):min(cap(b), limit+1)])
		b = b[:len(b)+k]
		switch {
		case len(b) > limit:
			return b, ErrTooLarge
		case err == io.EOF && n >= 0 && int64(len(b)) != n:
			return b, io.ErrUnexpectedEOF
		case err == io.EOF:
			return b, nil
		case err != nil:
			return b, err
		}
	}
}
