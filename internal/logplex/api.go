package logplex

// API CONTRACT (written first so that inputs can be built in parallel). The
// parser owner replaces the bodies; signatures change only by agreement.

import (
	"io"
	"time"
)

// Header is the syslog header of one message. Byte slices alias the frame they
// were parsed from and are valid only as long as it is.
type Header struct {
	Priority int
	Time     time.Time // UTC; zero when the message carries "-" or no timestamp
	Hostname []byte
	AppName  []byte // "app" or "heroku" on Heroku
	ProcID   []byte // "web.1", "router", "heroku-postgres", "logplex", …
	MsgID    []byte
}

// FrameError reports one malformed frame that the Scanner skipped; the caller
// counts it and calls Next again.
type FrameError struct {
	Frame  int    // 1-based index of the frame in the stream
	Offset int64  // byte offset of the frame's start in the stream
	Reason string // what was wrong, e.g. "length 70 exceeds remaining 12 bytes"
}

func (e *FrameError) Error() string { panic("unimplemented") }

// Scanner splits a drain body or syslog stream into frames (RFC 6587 octet
// counting; newline-delimited when a frame starts with '<'). Not safe for
// concurrent use.
type Scanner struct{}

// NewScanner returns a Scanner reading r that refuses frames longer than maxFrame bytes.
func NewScanner(r io.Reader, maxFrame int) *Scanner { panic("unimplemented") }

// Reset makes s read from r, keeping its buffer, so a Scanner can be pooled.
func (s *Scanner) Reset(r io.Reader) { panic("unimplemented") }

// Next returns the next message, without its length prefix and trailing LF.
// The slice is valid until the next call. A malformed frame yields a
// *FrameError (skip it and call Next again); the end of input yields io.EOF;
// any other error means the stream is broken and must be abandoned.
func (s *Scanner) Next() ([]byte, error) { panic("unimplemented") }

// ParseMessage splits one syslog message into its header and MSG. It accepts
// Heroku's drain form (`<PRI>1 TS host app web.1 - MSG`, no STRUCTURED-DATA) and
// RFC 5424 with STRUCTURED-DATA (`-` or `[…]`). msg aliases frame.
func ParseMessage(frame []byte) (h Header, msg []byte, err error) { panic("unimplemented") }

// ParseText parses a `heroku logs` / log-session line:
// `2024-05-01T12:00:00.123456+00:00 app[web.1]: MSG` → AppName "app", ProcID "web.1".
func ParseText(line []byte) (h Header, msg []byte, err error) { panic("unimplemented") }

// ParseAny accepts a syslog message (starts with '<'), a text line as in
// ParseText, or anything else as a bare MSG with a zero Header. It never fails.
func ParseAny(line []byte) (h Header, msg []byte) { panic("unimplemented") }
