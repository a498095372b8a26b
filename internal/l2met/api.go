package l2met

// API CONTRACT (written first so that inputs can be built in parallel). The
// parser owner replaces the bodies; signatures change only by agreement.

import "time"

// Line is one log message with the header fields parsing needs. Byte slices are
// only read during Parse.
type Line struct {
	Time    time.Time // the syslog timestamp; the caller puts the arrival time here when the line had none
	AppName []byte    // "app", "heroku", or empty for a bare line
	ProcID  []byte    // "web.1", "router", "heroku-postgres", "logplex", or empty
	Msg     []byte
}

// ParseError describes the pairs of one line that were rejected; the good pairs
// of the same line are still returned.
type ParseError struct {
	Rejected int    // number of rejected pairs or values in the line
	Reason   string // the first rejection, e.g. `count#req: value "abc" is not a number`
}

func (e *ParseError) Error() string { panic("unimplemented") }

// Parser turns log lines into measurements. It keeps an interning table so
// that steady-state parsing allocates nothing. Not safe for concurrent use: use
// one Parser per goroutine.
type Parser struct{}

// NewParser returns a ready Parser.
func NewParser() *Parser { panic("unimplemented") }

// Parse appends the measurements found in line to dst and returns dst. A line
// with no metric in it returns dst unchanged and a nil error. When some pairs
// are rejected, the good ones are still appended and err is a *ParseError.
func (p *Parser) Parse(dst []Measurement, line Line) ([]Measurement, error) {
	panic("unimplemented")
}
