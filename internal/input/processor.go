package input

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynometrics/dynometrics/internal/appstats"
	"github.com/dynometrics/dynometrics/internal/l2met"
	"github.com/dynometrics/dynometrics/internal/logplex"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// Sink receives measurements from the inputs. The aggregator implements it.
// Add must be safe for concurrent use and must not retain ms (nor modify it)
// after it returns; the strings in the measurements may be retained.
type Sink interface {
	Add(ms []metric.Measurement)
}

// SinkFunc adapts a function to the Sink interface.
type SinkFunc func(ms []metric.Measurement)

// Add calls f(ms).
func (f SinkFunc) Add(ms []metric.Measurement) { f(ms) }

const (
	// DefaultMaxLineBytes bounds one message when Config.MaxLineBytes is zero:
	// an octet-counted frame's length as its prefix counts it (the trailing LF
	// included), a newline-delimited frame or text line without its LF (and CR).
	// Heroku splits app lines at 10,000 bytes, so a Heroku message with its
	// header stays well below this. Longer messages are skipped and counted
	// (Stats.MalformedFrames for frames, Stats.OverlongLines for text lines).
	DefaultMaxLineBytes = 16 << 10

	// SinkBatch is the number of buffered measurements at which a Session calls
	// Sink.Add without waiting for the end of the body or read.
	SinkBatch = 1024
)

// Format says how ReadLines interprets each newline-delimited line.
type Format uint8

const (
	// FormatAny accepts a syslog message, a `heroku logs` text line, or a bare
	// app line (logplex.ParseAny). Used for stdin.
	FormatAny Format = iota
	// FormatText accepts `heroku logs` / log-session text lines
	// (logplex.ParseText); other lines are counted as Stats.BadHeaders.
	FormatText
	// FormatSyslog accepts one syslog message per line (logplex.ParseMessage).
	FormatSyslog
)

// Config configures a Processor. The zero value of every field means its
// documented default.
type Config struct {
	// MaxLineBytes bounds one message; 0 means DefaultMaxLineBytes.
	MaxLineBytes int
	// Now is the clock used for arrival times; nil means time.Now.
	Now func() time.Time
	// Logger receives debug messages about rejected input; nil means
	// slog.Default(). Message contents are never logged.
	Logger *slog.Logger
	// Apps, when set (multi-app mode), counts per app the lines of the
	// Sessions given an app (Session.SetApp).
	Apps *appstats.Table
}

// Stats are the cumulative counters of a Processor. A Session publishes its
// counts when it flushes, so they lag by at most one body or read.
type Stats struct {
	Lines           uint64 `metric:"lines"`                 // messages handed to the l2met parser
	Measurements    uint64 `metric:"measurements"`          // measurements passed to Sink.Add
	RejectedLines   uint64 `metric:"rejected_lines,drop"`   // messages with at least one rejected pair (l2met.ParseError)
	RejectedPairs   uint64 `metric:"rejected_pairs,drop"`   // pairs or values rejected in those messages
	MalformedFrames uint64 `metric:"malformed_frames,drop"` // frames the logplex Scanner skipped (bad length, over MaxLineBytes, …)
	BadHeaders      uint64 `metric:"bad_headers,drop"`      // messages whose syslog or text header could not be parsed
	OverlongLines   uint64 `metric:"overlong_lines,drop"`   // text lines over MaxLineBytes, skipped (ReadLines)
	BrokenStreams   uint64 `metric:"broken_streams,drop"`   // streams abandoned on a read error other than EOF or cancellation
	SinkCalls       uint64 `metric:"-"`                     // calls to Sink.Add
}

// Processor turns frames and lines into measurements for a Sink. It is safe
// for concurrent use; the Sessions it hands out are not.
type Processor struct {
	sink    Sink
	maxLine int
	now     func() time.Time
	log     *slog.Logger
	apps    *appstats.Table // Config.Apps
	pool    sync.Pool       // of *Session

	mu       sync.Mutex    // guards total
	total    Stats         // what the Sessions published
	ownLines atomic.Uint64 // see OwnLines
}

// NewProcessor returns a Processor that feeds sink.
func NewProcessor(sink Sink, cfg Config) (*Processor, error) {
	if sink == nil {
		return nil, errors.New("input: nil Sink")
	}
	if cfg.MaxLineBytes < 0 {
		return nil, errors.New("input: negative MaxLineBytes")
	}
	p := &Processor{sink: sink, maxLine: cmp.Or(cfg.MaxLineBytes, DefaultMaxLineBytes), now: cfg.Now, log: cmp.Or(cfg.Logger, slog.Default()), apps: cfg.Apps}
	if p.now == nil {
		p.now = time.Now
	}
	p.pool.New = func() any {
		return &Session{p: p, parser: l2met.NewParser(), buf: make([]metric.Measurement, 0, SinkBatch+64)}
	}
	return p, nil
}

// MaxLineBytes returns the bound on one message in bytes.
func (p *Processor) MaxLineBytes() int { return p.maxLine }

// Now returns the current time of the Processor's clock.
func (p *Processor) Now() time.Time { return p.now() }

// Stats returns the cumulative counters. Safe for concurrent use.
func (p *Processor) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

// OwnLines returns how many messages were the worker's own console output
// (IsWorkerOutput) and were skipped. Safe for concurrent use.
func (p *Processor) OwnLines() uint64 { return p.ownLines.Load() }

// Session returns a Session from the Processor's pool. Call Release when done.
func (p *Processor) Session() *Session {
	s := p.pool.Get().(*Session)
	s.arrival = time.Time{}
	return s
}

// ReadFrames reads a syslog stream or drain body from r until EOF, the
// context ends, or a read fails: octet-counted frames, or newline-delimited
// ones when a frame starts with '<' (logplex.Scanner). A malformed frame is
// counted and skipped. Measurements reach the Sink at the latest whenever a
// read of r is about to block, so a slow stream is not held back. Returns nil
// at EOF, ctx.Err() when ctx ended, or the read error.
func (p *Processor) ReadFrames(ctx context.Context, r io.Reader) error {
	return p.readStream(ctx, r, func(s *Session, r io.Reader) error { _, err := s.readFrames(r); return err })
}

// ReadLines reads newline-delimited lines from r until EOF, the context ends,
// or a read fails, and interprets each according to f. A line over
// MaxLineBytes is counted (Stats.OverlongLines) and skipped; empty lines are
// ignored; a trailing CR is removed. Measurements reach the Sink at the latest
// whenever a read of r is about to block. Returns nil at EOF, ctx.Err() when
// ctx ended, or the read error. Cancelling ctx takes effect at the next read:
// a read already blocked (os.Stdin) only returns when data or EOF arrives.
func (p *Processor) ReadLines(ctx context.Context, r io.Reader, f Format) error {
	return p.readStream(ctx, r, func(s *Session, r io.Reader) error { return s.readLines(r, f) })
}

// readStream reads r with read in a Session through a flushReader, and
// classifies the end of the stream: nil at EOF, ctx.Err() when ctx ended,
// else a broken stream (counted) and its error.
func (p *Processor) readStream(ctx context.Context, r io.Reader, read func(*Session, io.Reader) error) error {
	s := p.Session()
	defer s.Release()
	switch err := read(s, &flushReader{s: s, r: r, ctx: ctx}); {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		s.st.BrokenStreams++
		return err
	}
}

// Session is one goroutine's parsing state: a pooled l2met.Parser, a
// logplex.Scanner and a measurement buffer. Not safe for concurrent use.
type Session struct {
	p       *Processor
	parser  *l2met.Parser
	buf     []metric.Measurement
	sc      *logplex.Scanner
	br      *bufio.Reader
	body    bytes.Reader
	arrival time.Time
	app     string // SetApp
	st      Stats  // counts since the last Flush
}

// SetArrival sets the time used for messages without a timestamp of their
// own. When unset, the Processor's clock is read when such a message arrives.
func (s *Session) SetArrival(t time.Time) { s.arrival = t }

// SetApp sets the app (metric.Measurement.App) of the measurements the
// Session hands to the Sink from its next Flush on: call it between a Flush
// and the next body, with the app the body's request authenticated as
// (multi-app mode); "" (the default, and after Release) leaves App empty.
func (s *Session) SetApp(app string) { s.app = app }

// Frames processes one complete drain body or syslog chunk held in memory and
// returns the number of frames found in it, malformed ones included. A
// malformed frame is counted and skipped while the good frames around it are
// kept. It does not flush: call Flush after the body.
func (s *Session) Frames(body []byte) int {
	s.body.Reset(body)
	n, _ := s.readFrames(&s.body) // a bytes.Reader fails only with io.EOF
	s.body.Reset(nil)
	return n
}

// Frame processes one syslog message (without length prefix or trailing LF):
// Heroku's drain form or RFC 5424 with STRUCTURED-DATA.
func (s *Session) Frame(frame []byte) { s.parseHeaded(logplex.ParseMessage(frame)) }

// Line processes one text line (without its LF) according to f.
func (s *Session) Line(line []byte, f Format) {
	switch f {
	case FormatText:
		s.parseHeaded(logplex.ParseText(line))
	case FormatSyslog:
		s.Frame(line)
	default:
		h, msg := logplex.ParseAny(line)
		s.parse(&h, msg)
	}
}

// Flush hands the buffered measurements to the Sink and publishes the
// Session's counts to the Processor's Stats.
func (s *Session) Flush() {
	if len(s.buf) > 0 {
		if s.app != "" {
			for i := range s.buf {
				s.buf[i].App = s.app
			}
		}
		s.p.sink.Add(s.buf)
		s.st.SinkCalls++
		s.st.Measurements += uint64(len(s.buf))
		clear(s.buf) // drop string references while pooled
		s.buf = s.buf[:0]
	}
	s.publish()
}

// Release flushes the Session and returns it to the Processor's pool. The
// Session must not be used afterwards.
func (s *Session) Release() {
	s.Flush()
	s.app = ""
	if s.sc != nil {
		s.sc.Reset(emptyReader{})
	}
	if s.br != nil {
		s.br.Reset(emptyReader{})
	}
	s.p.pool.Put(s)
}

// publish adds the Session's counts to the Processor's Stats.
func (s *Session) publish() {
	st, p := &s.st, s.p
	if *st == (Stats{}) {
		return
	}
	if s.app != "" && p.apps != nil && st.Lines != 0 {
		p.apps.For(s.app).Lines.Add(st.Lines)
	}
	p.mu.Lock()
	t := &p.total
	t.Lines += st.Lines
	t.Measurements += st.Measurements
	t.RejectedLines += st.RejectedLines
	t.RejectedPairs += st.RejectedPairs
	t.MalformedFrames += st.MalformedFrames
	t.BadHeaders += st.BadHeaders
	t.OverlongLines += st.OverlongLines
	t.BrokenStreams += st.BrokenStreams
	t.SinkCalls += st.SinkCalls
	p.mu.Unlock()
	*st = Stats{}
}

// parseHeaded parses msg unless its header could not be parsed (err),
// which is counted.
func (s *Session) parseHeaded(h logplex.Header, msg []byte, err error) {
	if err != nil {
		s.st.BadHeaders++
		s.debug("input: bad syslog or text line header", err)
		return
	}
	s.parse(&h, msg)
}

// parse runs the l2met parser on one message and buffers its measurements.
func (s *Session) parse(h *logplex.Header, msg []byte) {
	t := h.Time
	if t.IsZero() {
		if s.arrival.IsZero() {
			s.arrival = s.p.now()
		}
		t = s.arrival
	}
	if IsWorkerOutput(msg) {
		s.p.ownLines.Add(1)
		return
	}
	s.st.Lines++
	var err error
	s.buf, err = s.parser.Parse(s.buf, l2met.Line{Time: t, AppName: h.AppName, ProcID: h.ProcID, Msg: msg})
	if err != nil {
		s.st.RejectedLines++
		if pe, ok := errors.AsType[*l2met.ParseError](err); ok {
			s.st.RejectedPairs += uint64(pe.Rejected)
		} else {
			s.st.RejectedPairs++
		}
		s.debug("input: rejected pairs", err)
	}
	if len(s.buf) >= SinkBatch {
		s.Flush()
	}
}

func (s *Session) debug(msg string, err error) {
	if s.p.log.Enabled(context.Background(), slog.LevelDebug) {
		s.p.log.Debug(msg, "err", err)
	}
}

// readFrames scans r with the pooled Scanner until EOF or a read error.
func (s *Session) readFrames(r io.Reader) (int, error) {
	if s.sc == nil {
		s.sc = logplex.NewScanner(r, s.p.maxLine)
	} else {
		s.sc.Reset(r)
	}
	n := 0
	for {
		frame, err := s.sc.Next()
		if err == nil {
			n++
			s.Frame(frame)
			continue
		}
		if err == io.EOF {
			return n, nil
		}
		if _, ok := errors.AsType[*logplex.FrameError](err); ok {
			n++
			s.st.MalformedFrames++
			s.debug("input: malformed frame", err)
			continue
		}
		return n, err
	}
}

// readLines reads newline-delimited lines from r until EOF or a read error.
func (s *Session) readLines(r io.Reader, f Format) error {
	// The buffer holds a line of MaxLineBytes plus its LF (and a CR).
	size := s.p.maxLine + 2
	if s.br == nil || s.br.Size() != size {
		s.br = bufio.NewReaderSize(r, size)
	} else {
		s.br.Reset(r)
	}
	for {
		line, err := s.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			s.st.OverlongLines++
			for err == bufio.ErrBufferFull { // skip the rest of the line
				_, err = s.br.ReadSlice('\n')
			}
		} else {
			line = bytes.TrimSuffix(line, []byte{'\n'})
			line = bytes.TrimSuffix(line, []byte{'\r'})
			if len(line) > s.p.maxLine {
				s.st.OverlongLines++
			} else if len(line) > 0 {
				s.Line(line, f)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// flushReader flushes the Session before each read of the underlying stream,
// so measurements never wait behind a blocking read, stops reading when the
// context ends, and records the arrival time of what it read.
type flushReader struct {
	s   *Session
	r   io.Reader
	ctx context.Context
}

func (f *flushReader) Read(b []byte) (int, error) {
	f.s.Flush()
	if err := f.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := f.r.Read(b)
	if n > 0 {
		f.s.arrival = f.s.p.now()
	}
	return n, err
}

// emptyReader lets a pooled Scanner or bufio.Reader drop its last reader.
type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, io.EOF }
