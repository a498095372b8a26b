package logplex

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

const (
	// DefaultMaxFrame is the frame limit NewScanner uses when given maxFrame <= 0:
	// Heroku splits dyno output into 10,000-byte lines, plus a header of about
	// 100 bytes, so 16 KiB leaves room for RFC 5424 STRUCTURED-DATA.
	DefaultMaxFrame = 16 << 10

	// MaxLengthDigits is the most digits an octet-counting length prefix may
	// have. Longer prefixes are malformed frames.
	MaxLengthDigits = 9

	// initialBuffer is the Scanner's starting buffer; it grows up to the frame
	// limit plus room for the prefix and the look-ahead.
	initialBuffer = 4096

	// maxEmptyReads is how many (0, nil) results from the reader in a row the
	// Scanner tolerates before failing with io.ErrNoProgress.
	maxEmptyReads = 100
)

// ErrBadFrame is wrapped by every *FrameError.
var ErrBadFrame = errors.New("logplex: malformed frame")

// FrameError reports one malformed frame that the Scanner skipped; the caller
// counts it and calls Next again.
type FrameError struct {
	Frame  int    // 1-based index of the frame in the stream
	Offset int64  // byte offset of the frame's start in the stream
	Reason string // what was wrong, e.g. "length 70 exceeds remaining 12 bytes"
}

// Error returns e.g. "logplex: frame 3 at byte 412: length 70 exceeds remaining 12 bytes".
func (e *FrameError) Error() string {
	return fmt.Sprintf("logplex: frame %d at byte %d: %s", e.Frame, e.Offset, e.Reason)
}

// Unwrap returns ErrBadFrame.
func (e *FrameError) Unwrap() error { return ErrBadFrame }

// ScannerStats are cumulative counters of a Scanner, kept across Reset.
type ScannerStats struct {
	Frames       uint64 // good frames returned by Next
	Bytes        uint64 // bytes of those frames, prefixes and trailing LF included
	BadFrames    uint64 // *FrameError results, all reasons (the three below and bad prefixes)
	Oversize     uint64 // frames refused for being longer than maxFrame
	Truncated    uint64 // frames cut short by the end of input
	Misaligned   uint64 // frames whose length did not end at a frame boundary
	SkippedBytes uint64 // bytes discarded while resynchronising after a bad frame
}

// Scanner splits a drain body or syslog stream into frames. Not safe for
// concurrent use.
//
// Framing: a frame that starts with a digit is octet-counted (RFC 6587:
// `<len><SP><msg>`, where len counts the message bytes including a trailing
// LF if the sender writes one, as Logplex does); a frame that starts with '<'
// is newline-delimited (it ends at the next LF, or at the end of input).
// Whitespace (SP, TAB, CR, LF) between frames is skipped. Next returns the
// message without the prefix and without one trailing LF (octet-counted) or
// LF / CRLF (newline-delimited).
//
// Malformed frames: a length prefix that is not 1-MaxLengthDigits digits
// followed by a space, a zero length, a length above maxFrame, a length that
// runs past the end of input, a length that does not end at a frame boundary
// (a frame that does not end in LF must be followed by the end of input,
// whitespace, '<', or a digit run and a space; see Latency for the one
// exception), a newline-delimited frame longer than maxFrame, or a frame
// starting with any other byte. Each yields one *FrameError.
//
// Latency: on a live stream Next avoids reading past the frame it returns,
// so the last frame on a quiet connection is not held back until the next
// one arrives:
//   - An octet-counted frame whose last byte is LF (Logplex and Heroku syslog
//     drains always end messages in LF) is returned as soon as its last byte
//     has been read, without another Read.
//   - A newline-delimited frame is returned as soon as its LF has been read.
//   - An octet-counted frame that does not end in LF (RFC 6587 senders such as
//     rsyslog write no LF) is checked against the bytes after it when they are
//     already buffered. When its last byte is the last byte read, it is
//     returned without looking further if the Read that delivered that byte
//     returned less than the Scanner asked for and started no later than the
//     message's first byte: the whole message arrived in one short Read, so
//     the sender's write ended where the length says. Otherwise the Scanner
//     reads on (up to MaxLengthDigits+2 bytes) to check the boundary, and such
//     a frame waits for the next frame or the end of input. The exception
//     means a length that is too short can go unnoticed when a write ends
//     exactly there; the rest of that write then starts the next frame, which
//     is reported as malformed and resynchronised as usual.
//
// Resync rule: after a malformed frame the Scanner skips forward from just
// after the bad frame's length prefix (from the frame's first byte when the
// prefix itself is bad) to the first LF that is followed by `<digits><SP><`
// (an octet-counted syslog frame) or by `<digit` (a newline-delimited syslog
// frame), or to the end of input, and continues there. Skipped bytes are
// counted in ScannerStats.SkippedBytes. Good frames after a bad one in the
// same body are therefore still returned.
type Scanner struct {
	r        io.Reader
	maxFrame int
	limit    int // largest buffer: maxFrame + prefix + look-ahead

	buf        []byte
	start, end int   // unread data is buf[start:end]
	base       int64 // stream offset of buf[0]
	rerr       error // sticky reader error, io.EOF included
	readFrom   int   // buf index where the latest Read's bytes start (they end at end)
	shortRead  bool  // the latest Read returned less than the room it was given

	frame  int  // frames started in this stream
	resync bool // skip to the next sync point before the next frame

	stats ScannerStats
}

// NewScanner returns a Scanner reading r that refuses frames longer than
// maxFrame bytes (DefaultMaxFrame if maxFrame <= 0). Its buffer grows up to
// about maxFrame bytes.
func NewScanner(r io.Reader, maxFrame int) *Scanner {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	s := &Scanner{maxFrame: maxFrame, limit: maxFrame + 2*(MaxLengthDigits+1) + 2}
	s.buf = make([]byte, min(initialBuffer, s.limit))
	s.Reset(r)
	return s
}

// Reset makes s read from r, keeping its buffer, so a Scanner can be pooled.
// Frame numbers and offsets restart at the beginning of r; Stats keep counting.
func (s *Scanner) Reset(r io.Reader) {
	*s = Scanner{r: r, maxFrame: s.maxFrame, limit: s.limit, buf: s.buf, stats: s.stats}
}

// Stats returns the cumulative counters. Like Next it is not safe for
// concurrent use: read it from the goroutine that calls Next (after each body,
// say) and add it to shared self-metrics there. The counters are plain fields
// because atomic ones cost as much per frame as the framing itself.
func (s *Scanner) Stats() ScannerStats { return s.stats }

// fill reads more input after s.end, compacting or growing the buffer first if
// it is full. It returns false when nothing more can be read (s.rerr is set).
func (s *Scanner) fill() bool {
	if s.rerr != nil {
		return false
	}
	if s.end == len(s.buf) {
		if s.start > 0 {
			n := copy(s.buf, s.buf[s.start:s.end])
			s.base += int64(s.start)
			s.start, s.end = 0, n
		} else {
			if len(s.buf) >= s.limit {
				// Unreachable: callers never ask for more than limit bytes.
				s.rerr = errors.New("logplex: scanner buffer full")
				return false
			}
			nb := make([]byte, min(2*len(s.buf), s.limit))
			s.end = copy(nb, s.buf[s.start:s.end])
			s.base += int64(s.start)
			s.start = 0
			s.buf = nb
		}
	}
	s.readFrom = s.end
	for range maxEmptyReads {
		n, err := s.r.Read(s.buf[s.end:])
		s.shortRead = s.end+n < len(s.buf)
		s.end += n
		if err != nil {
			s.rerr = err
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	s.rerr = io.ErrNoProgress
	return false
}

// ensure makes at least n bytes available from s.start and reports whether it
// could. n must not exceed s.limit.
func (s *Scanner) ensure(n int) bool {
	for s.end-s.start < n {
		if !s.fill() {
			return false
		}
	}
	return true
}

// brokenErr returns the reader's error if it is not the end of input.
func (s *Scanner) brokenErr() error {
	if s.rerr != nil && s.rerr != io.EOF {
		return s.rerr
	}
	return nil
}

// Next returns the next message, without its length prefix and trailing LF.
// The slice is valid until the next call. A malformed frame yields a
// *FrameError (skip it and call Next again); the end of input yields io.EOF;
// any other error means the stream is broken and must be abandoned.
func (s *Scanner) Next() ([]byte, error) {
	if s.resync {
		s.skipToSync()
	}
	for {
		if s.start == s.end && !s.fill() {
			if err := s.brokenErr(); err != nil {
				return nil, err
			}
			return nil, io.EOF
		}
		if c := s.buf[s.start]; c == '\n' || c == '\r' || c == ' ' || c == '\t' {
			s.start++
			continue
		}
		break
	}
	s.frame++
	switch c := s.buf[s.start]; {
	case c >= '0' && c <= '9':
		return s.nextCounted()
	case c == '<':
		return s.nextLine()
	default:
		return s.bad(0, nil, "frame starts with %q, want a length or '<'", c)
	}
}

// bad records a malformed frame starting at s.start, arranges to resync from
// s.start+skip, and returns the *FrameError.
func (s *Scanner) bad(skip int, counter *uint64, format string, args ...any) ([]byte, error) {
	if err := s.brokenErr(); err != nil {
		return nil, err
	}
	e := &FrameError{Frame: s.frame, Offset: s.base + int64(s.start), Reason: fmt.Sprintf(format, args...)}
	s.stats.BadFrames++
	if counter != nil {
		*counter++
	}
	s.start += skip
	s.stats.SkippedBytes += uint64(skip)
	s.resync = true
	return nil, e
}

func (s *Scanner) nextCounted() ([]byte, error) {
	i, n := 0, 0
	for {
		if !s.ensure(i + 1) {
			return s.bad(0, &s.stats.Truncated, "length prefix cut short by the end of input")
		}
		c := s.buf[s.start+i]
		if c == ' ' {
			break
		}
		if c < '0' || c > '9' {
			return s.bad(0, nil, "length prefix has %q at byte %d", c, i)
		}
		if i == MaxLengthDigits {
			return s.bad(0, nil, "length prefix longer than %d digits", MaxLengthDigits)
		}
		n = n*10 + int(c-'0')
		i++
	}
	head := i + 1
	switch {
	case n == 0:
		return s.bad(head, nil, "length 0")
	case n > s.maxFrame:
		return s.bad(head, &s.stats.Oversize, "length %d exceeds the limit of %d bytes", n, s.maxFrame)
	case !s.ensure(head + n):
		return s.bad(head, &s.stats.Truncated, "length %d exceeds remaining %d bytes", n, s.end-s.start-head)
	case s.buf[s.start+head+n-1] != '\n' && !s.writeEndsAt(head, n) && !s.boundaryAt(head+n):
		return s.bad(head, &s.stats.Misaligned, "length %d does not end at a frame boundary", n)
	}
	return bytes.TrimSuffix(s.take(head, n, 0), []byte{'\n'}), nil
}

// take consumes a good frame of head+n+tail bytes (prefix, message, LF) from
// s.start and returns its message.
func (s *Scanner) take(head, n, tail int) []byte {
	msg := s.buf[s.start+head : s.start+head+n]
	s.start += head + n + tail
	s.stats.Frames++
	s.stats.Bytes += uint64(head + n + tail)
	return msg
}

// writeEndsAt reports whether the message of n bytes that starts head bytes
// after s.start arrived whole in the latest Read, which returned less than it
// was given room for and ended with the message's last byte: the sender's
// write ended there, so the frame is accepted without reading further (see
// Scanner, Latency).
func (s *Scanner) writeEndsAt(head, n int) bool {
	return s.shortRead && s.start+head+n == s.end && s.readFrom <= s.start+head
}

// boundaryAt reports whether a frame may start k bytes after s.start: end of
// input, whitespace, '<', or digits followed by a space. Input that ends in
// the middle of a digit run counts as a boundary (the next Next reports it).
func (s *Scanner) boundaryAt(k int) bool {
	c, ok := s.byteAt(k)
	switch {
	case !ok || c == '\n' || c == '\r' || c == ' ' || c == '\t' || c == '<':
		return true
	case c < '0' || c > '9':
		return false
	}
	for j := 1; j <= MaxLengthDigits; j++ {
		switch c, ok := s.byteAt(k + j); {
		case !ok || c == ' ':
			return true
		case c < '0' || c > '9':
			return false
		}
	}
	return false
}

func (s *Scanner) nextLine() ([]byte, error) {
	searched := 0
	for {
		if i := bytes.IndexByte(s.buf[s.start+searched:s.end], '\n'); i >= 0 {
			n := searched + i
			if n > s.maxFrame {
				return s.bad(0, &s.stats.Oversize, "line longer than the limit of %d bytes", s.maxFrame)
			}
			return bytes.TrimSuffix(s.take(0, n, 1), []byte{'\r'}), nil
		}
		searched = s.end - s.start
		if searched > s.maxFrame {
			return s.bad(0, &s.stats.Oversize, "line longer than the limit of %d bytes", s.maxFrame)
		}
		if !s.fill() {
			if err := s.brokenErr(); err != nil {
				return nil, err
			}
			// The last line of the input need not end in LF.
			return bytes.TrimSuffix(s.take(0, s.end-s.start, 0), []byte{'\r'}), nil
		}
	}
}

// skipToSync discards input up to the next sync point (see Scanner).
func (s *Scanner) skipToSync() {
	s.resync = false
	for {
		i := bytes.IndexByte(s.buf[s.start:s.end], '\n')
		if i < 0 {
			s.stats.SkippedBytes += uint64(s.end - s.start)
			s.start = s.end
			if !s.fill() {
				return
			}
			continue
		}
		s.stats.SkippedBytes += uint64(i + 1)
		s.start += i + 1
		if s.syncAt() {
			return
		}
	}
}

// syncAt reports whether s.start is at `<digit` or `<digits><SP><`, or at a
// prefix of those cut short by the end of input. It reads only as far as the
// answer needs, so a sync point already in the buffer costs no Read.
func (s *Scanner) syncAt() bool {
	c, ok := s.byteAt(0)
	if !ok {
		return true
	}
	if c == '<' {
		c, ok = s.byteAt(1)
		return !ok || c >= '0' && c <= '9'
	}
	j := 0
	for c >= '0' && c <= '9' {
		if j++; j > MaxLengthDigits {
			return false
		}
		if c, ok = s.byteAt(j); !ok {
			return true
		}
	}
	if j == 0 || c != ' ' {
		return false
	}
	c, ok = s.byteAt(j + 1)
	return !ok || c == '<'
}

// byteAt returns the byte k bytes after s.start, reading if needed; false at
// the end of input.
func (s *Scanner) byteAt(k int) (byte, bool) {
	if !s.ensure(k + 1) {
		return 0, false
	}
	return s.buf[s.start+k], true
}
