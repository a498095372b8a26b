package logplex

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"time"
)

// ErrHeader is wrapped by every error ParseMessage and ParseText return.
var ErrHeader = errors.New("logplex: malformed header")

// MaxPriority is the largest syslog PRI value (facility 23, severity 7).
const MaxPriority = 191

// herokuHostname is the HOSTNAME Logplex writes into HTTPS drain messages.
// Messages with this hostname carry no STRUCTURED-DATA field.
var herokuHostname = []byte("host")

// utf8BOM may start an RFC 5424 MSG; it is removed.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Header is the syslog header of one message. Byte slices alias the frame they
// were parsed from and are valid only as long as it is. A NILVALUE (`-`) field
// is returned as nil.
type Header struct {
	Priority int
	Time     time.Time // UTC; zero when the message carries "-" or no timestamp
	Hostname []byte    // on syslog drains this holds the drain token: never log it
	AppName  []byte    // "app" or "heroku" on Heroku
	ProcID   []byte    // "web.1", "router", "heroku-postgres", "logplex", …
	MsgID    []byte
}

// fail describes a malformed header without allocating, so that ParseAny can
// fall back to a bare message for free; the exported functions turn it into an
// error. It names the field and the byte offset, never the field's content:
// the HOSTNAME of a syslog drain message is the drain token.
type fail struct {
	what string // empty: no failure
	off  int
}

func (f fail) err() error {
	if f.what == "" {
		return nil
	}
	return fmt.Errorf("%w: %s at byte %d", ErrHeader, f.what, f.off)
}

// ParseMessage splits one syslog message into its header and MSG. It accepts
// Heroku's drain form (`<PRI>1 TS host app web.1 - MSG`, no STRUCTURED-DATA) and
// RFC 5424 with STRUCTURED-DATA (`-` or `[…]`). msg aliases frame. It does not
// allocate unless it returns an error, and is safe for concurrent use.
//
// The parser is hand-written: strict RFC 5424 parsers (go-syslog's rfc5424,
// for one) reject Heroku's drain lines because they lack STRUCTURED-DATA, and
// the generic ones allocate per message. The rules:
//
//   - PRI is 1-3 digits up to MaxPriority; VERSION is 1-2 digits.
//   - TIMESTAMP is `-` (zero Time) or RFC 3339, converted to UTC.
//   - HOSTNAME, APP-NAME, PROCID and MSGID are non-empty runs of non-space
//     bytes; `-` becomes nil.
//   - When HOSTNAME is `host` (what Logplex writes into HTTPS drain messages),
//     MSG follows MSGID directly, so a dyno line that starts with `-` or `[`
//     is kept whole. Otherwise a STRUCTURED-DATA field is expected: `-` or one
//     or more well-formed `[id param="value"…]` elements are skipped; anything
//     else is taken as the start of MSG (lenient: some senders omit it).
//   - A UTF-8 BOM at the start of MSG is removed.
func ParseMessage(frame []byte) (h Header, msg []byte, err error) {
	// parseMessage fills h in place: returning the 128-byte Header by value
	// through two calls cost a measurable copy.
	msg, f := parseMessage(frame, &h)
	return h, msg, f.err()
}

func parseMessage(frame []byte, h *Header) (msg []byte, err fail) {
	if len(frame) == 0 || frame[0] != '<' {
		return failed(h, fail{"missing '<' of PRI", 0})
	}
	p := 1
	pri, nd := 0, 0
	for ; p < len(frame) && frame[p] >= '0' && frame[p] <= '9' && nd < 4; p++ {
		pri = pri*10 + int(frame[p]-'0')
		nd++
	}
	if nd == 0 || nd > 3 || pri > MaxPriority || p >= len(frame) || frame[p] != '>' {
		return failed(h, fail{"bad PRI", p})
	}
	h.Priority = pri
	p++
	nd = 0
	for ; p < len(frame) && frame[p] >= '0' && frame[p] <= '9'; p++ {
		nd++
	}
	if nd == 0 || nd > 2 || frame[p-1] == '0' && nd == 1 {
		return failed(h, fail{"bad VERSION", p})
	}
	if p >= len(frame) || frame[p] != ' ' {
		return failed(h, fail{"missing space after VERSION", p})
	}
	p++

	// Fast path: the five fields up to MSGID are non-empty and each followed
	// by a space, found in one pass. Otherwise headerField takes them one by
	// one and words the error.
	var sp [5]int
	fast := nextSpaces(frame, p, &sp) && sp[0] > p && sp[1] > sp[0]+1 && sp[2] > sp[1]+1 && sp[3] > sp[2]+1 && sp[4] > sp[3]+1
	var field []byte
	tsAt := p
	if fast {
		field = frame[p:sp[0]]
	} else if field, p, err = headerField(frame, p, "TIMESTAMP", true); err.what != "" {
		return failed(h, err)
	}
	if !isNil(field) {
		t, ok := parseTime(field)
		if !ok {
			return failed(h, fail{"bad TIMESTAMP", tsAt})
		}
		h.Time = t
	}
	if fast {
		h.Hostname, h.AppName, h.ProcID, h.MsgID = frame[sp[0]+1:sp[1]], frame[sp[1]+1:sp[2]], frame[sp[2]+1:sp[3]], frame[sp[3]+1:sp[4]]
		p = sp[4] + 1
	} else {
		names := [4]string{"HOSTNAME", "APP-NAME", "PROCID", "MSGID"}
		for i, f := range [4]*[]byte{&h.Hostname, &h.AppName, &h.ProcID, &h.MsgID} {
			if *f, p, err = headerField(frame, p, names[i], i < 3); err.what != "" { // MSG may be absent
				return failed(h, err)
			}
		}
	}
	heroku := bytes.Equal(h.Hostname, herokuHostname)
	h.Hostname, h.AppName, h.ProcID, h.MsgID = nilValue(h.Hostname), nilValue(h.AppName), nilValue(h.ProcID), nilValue(h.MsgID)
	if p >= len(frame) {
		return nil, fail{}
	}
	rest := frame[p:]
	if !heroku {
		rest = skipStructuredData(rest)
	}
	return bytes.TrimPrefix(rest, utf8BOM), fail{}
}

// failed zeroes *h and returns f, for parseMessage's error paths.
func failed(h *Header, f fail) ([]byte, fail) {
	*h = Header{}
	return nil, f
}

// headerField returns the run of non-space bytes at frame[p:] and the index
// after the space that ends it. When needSpace is set the field must be
// followed by a space (more header follows); otherwise it may end the frame.
func headerField(frame []byte, p int, name string, needSpace bool) ([]byte, int, fail) {
	end := bytes.IndexByte(frame[p:], ' ')
	if end < 0 {
		if needSpace {
			return nil, p, fail{"message ends in " + name, len(frame)}
		}
		end = len(frame) - p
	}
	if end == 0 {
		return nil, p, fail{"empty " + name, p}
	}
	f := frame[p : p+end]
	p += end
	if p < len(frame) {
		p++ // the space
	}
	return f, p, fail{}
}

// nextSpaces stores in sp the indexes of the next five spaces in b from p
// and reports whether there were five. It tests 8 bytes at a time (SWAR with
// an exact zero-byte mask, so every space in a word is found at once).
func nextSpaces(b []byte, p int, sp *[5]int) bool {
	const lo7, spaces, high = 0x7f7f7f7f7f7f7f7f, 0x2020202020202020, 0x8080808080808080
	k := 0
	for ; p+8 <= len(b); p += 8 {
		x := binary.LittleEndian.Uint64(b[p:]) ^ spaces
		m := ^((x&lo7 + lo7) | x) & high
		for ; m != 0; m &= m - 1 {
			sp[k] = p + bits.TrailingZeros64(m)>>3
			if k++; k == len(sp) {
				return true
			}
		}
	}
	for ; p < len(b); p++ {
		if b[p] == ' ' {
			sp[k] = p
			if k++; k == len(sp) {
				return true
			}
		}
	}
	return false
}

func isNil(f []byte) bool { return len(f) == 1 && f[0] == '-' }

func nilValue(f []byte) []byte {
	if isNil(f) {
		return nil
	}
	return f
}

// skipStructuredData returns b without a leading STRUCTURED-DATA field and the
// space after it. If b does not start with a well-formed one, b is returned
// unchanged.
func skipStructuredData(b []byte) []byte {
	i := 0
	if len(b) > 0 && b[0] == '-' {
		i = 1
	} else {
		for i < len(b) && b[i] == '[' {
			n := sdElement(b[i:])
			if n == 0 {
				return b
			}
			i += n
		}
	}
	switch {
	case i == 0:
		return b
	case i == len(b):
		return b[i:]
	case b[i] == ' ':
		return b[i+1:]
	}
	return b
}

// sdElement returns the length of the SD-ELEMENT `[id k="v" …]` at the start of
// b, or 0 if it is not well formed.
func sdElement(b []byte) int {
	i := 1
	name := func() bool {
		start := i
		for i < len(b) && b[i] > ' ' && b[i] < 127 && b[i] != '=' && b[i] != ']' && b[i] != '"' {
			i++
		}
		return i > start
	}
	if !name() {
		return 0
	}
	for i < len(b) {
		switch b[i] {
		case ']':
			return i + 1
		case ' ':
			i++
			if !name() || i+1 >= len(b) || b[i] != '=' || b[i+1] != '"' {
				return 0
			}
			for i += 2; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++ // the escaped byte
				}
			}
			if i >= len(b) {
				return 0
			}
			i++ // the closing quote
		default:
			return 0
		}
	}
	return 0
}

// ParseText parses a `heroku logs` / log-session line:
// `2024-05-01T12:00:00.123456+00:00 app[web.1]: MSG` → AppName "app", ProcID
// "web.1". A source without brackets (`app: MSG`) gives a nil ProcID. The
// space after the colon is optional. msg aliases line. It does not allocate
// unless it returns an error, and is safe for concurrent use.
func ParseText(line []byte) (h Header, msg []byte, err error) {
	h, msg, f := parseText(line)
	return h, msg, f.err()
}

func parseText(line []byte) (h Header, msg []byte, err fail) {
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return Header{}, nil, fail{"no space after timestamp", len(line)}
	}
	t, ok := parseTime(line[:sp])
	if !ok {
		return Header{}, nil, fail{"bad timestamp", 0}
	}
	h.Time = t
	p := sp + 1
	start := p
	for p < len(line) && line[p] != '[' && line[p] != ':' && line[p] != ' ' {
		p++
	}
	if p == start || p >= len(line) || line[p] == ' ' {
		return Header{}, nil, fail{"bad source (want app[proc]:)", start}
	}
	h.AppName = line[start:p]
	if line[p] == '[' {
		p++
		ps := p
		for p < len(line) && line[p] != ']' && line[p] != ' ' {
			p++
		}
		if p == ps || p >= len(line) || line[p] != ']' {
			return Header{}, nil, fail{"bad process name (want [proc])", ps}
		}
		h.ProcID = line[ps:p]
		p++
	}
	if p >= len(line) || line[p] != ':' {
		return Header{}, nil, fail{"missing ':' after source", p}
	}
	p++
	if p < len(line) && line[p] == ' ' {
		p++
	}
	return h, line[p:], fail{}
}

// ParseAny accepts a syslog message (starts with '<'), a text line as in
// ParseText (starts with a digit), or anything else as a bare MSG with a zero
// Header. A line that looks like one of the first two but does not parse is
// also returned whole as a bare MSG. It never fails, does not allocate on the
// success paths, and is safe for concurrent use.
func ParseAny(line []byte) (h Header, msg []byte) {
	if len(line) > 0 {
		switch c := line[0]; {
		case c == '<':
			if msg, err := parseMessage(line, &h); err.what == "" {
				return h, msg
			}
		case c >= '0' && c <= '9':
			if h, msg, err := parseText(line); err.what == "" {
				return h, msg
			}
		}
	}
	return Header{}, line
}
