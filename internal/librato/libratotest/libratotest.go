package libratotest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Limits the fake enforces.
const (
	MaxMetricsPerPost      = 300
	MaxMeasurementsPerPost = 1000
	MaxTags                = 50
	DefaultMaxAge          = 2 * time.Hour
	maxBody                = 16 << 20
	maxAbsValue            = 1e126
)

// Options configure the fake.
type Options struct {
	User, Token string           // the accepted Basic credentials
	AppOptics   bool             // also accept Token as user with an empty password on /v1/measurements
	MaxAge      time.Duration    // measure_time older than this is refused (default 2h)
	Now         func() time.Time // clock for the age check (default time.Now)
}

// Measurement is one accepted measurement, flattened.
type Measurement struct {
	API    string            // "metrics" or "measurements"
	Type   string            // "gauge" or "counter" on the metrics API; "" on measurements
	Name   string            // as sent
	Source string            // effective source (metrics API); "" when none
	Tags   map[string]string // effective tags, lowercased (measurements API)
	Time   int64             // effective measure_time / time, epoch seconds
	Period int64             // 0 when not sent

	HasValue bool
	Value    float64

	// Summary fields, set when Summary is true (a complex gauge or a summary
	// measurement). SumSquares is metrics-only, Last measurements-only.
	Summary                         bool
	Count                           int64
	Sum, Min, Max, SumSquares, Last float64
	HasMin, HasMax, HasSS, HasLast  bool
	Unit                            string // attributes.display_units_short
}

// Fault is an injected misbehaviour.
type Fault struct {
	Status int           // answer this status without looking at the request (429 carries rate-limit headers)
	Delay  time.Duration // wait this long first; a client that hangs up meanwhile has nothing recorded (like a proxy timing out before the backend)
	Drop   bool          // close the connection without an answer
}

// Counts summarise the requests seen.
type Counts struct {
	Requests int // every request, faults included
	Accepted int // 2xx answers
	Rejected int // 4xx answers from validation (not injected)
	Faults   int // requests answered by an injected fault (status or drop)
}

// Server is the fake. Safe for concurrent use.
type Server struct {
	*httptest.Server
	opts Options

	mu       sync.Mutex
	user     string
	token    string
	faults   []Fault
	accepted []Measurement
	counts   Counts
	errs     []string // bodies of validation errors, in order
}

// New starts a fake on 127.0.0.1 and stops it when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, user: opts.User, token: opts.Token}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// SetCredentials changes the accepted credentials, e.g. to model a fixed token.
func (s *Server) SetCredentials(user, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user, s.token = user, token
}

// Inject makes the next n requests misbehave as f says (after any already queued).
func (s *Server) Inject(n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, slices.Repeat([]Fault{f}, max(n, 0))...)
}

// Measurements returns a copy of every accepted measurement, in arrival order.
func (s *Server) Measurements() []Measurement {
	return locked(s, func() []Measurement { return slices.Clone(s.accepted) })
}

// locked returns f() computed with s.mu held.
func locked[T any](s *Server, f func() T) T {
	s.mu.Lock()
	defer s.mu.Unlock()
	return f()
}

// Find returns the first accepted measurement with the name and source (or,
// on the measurements API, dyno tag).
func (s *Server) Find(name, source string) (Measurement, bool) {
	for _, m := range s.Measurements() {
		src := m.Source
		if m.API == "measurements" {
			src = m.Tags["dyno"]
		}
		if m.Name == name && src == source {
			return m, true
		}
	}
	return Measurement{}, false
}

// Counts returns the request counters.
func (s *Server) Counts() Counts { return locked(s, func() Counts { return s.counts }) }

// Errors returns the bodies of the validation errors answered so far.
func (s *Server) Errors() []string { return locked(s, func() []string { return slices.Clone(s.errs) }) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.counts.Requests++
	var f *Fault
	if len(s.faults) > 0 {
		f = &s.faults[0]
		s.faults = s.faults[1:]
	}
	user, token := s.user, s.token
	s.mu.Unlock()

	// Read the body first: only then does net/http notice a client that
	// hangs up during an injected delay (and cancel r.Context()).
	body, readErr := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if f != nil {
		if f.Delay > 0 {
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return // the client gave up: nothing recorded
			}
		}
		if f.Drop || f.Status != 0 {
			s.mu.Lock()
			s.counts.Faults++
			s.mu.Unlock()
		}
		if f.Drop {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		if f.Status != 0 {
			if f.Status == http.StatusTooManyRequests {
				w.Header().Set("X-Librato-RateLimit-Agg", "limit=300,remaining=0,reset=60")
				w.Header().Set("X-Librato-RateLimit-Std", "limit=300,remaining=0,reset=60")
				w.Header().Set("Retry-After", "1")
			}
			kind := "system"
			if f.Status < 500 {
				kind = "request"
			}
			writeErr(w, f.Status, kind, "", http.StatusText(f.Status))
			return
		}
	}

	api := strings.TrimPrefix(r.URL.Path, "/v1/")
	u, p, ok := r.BasicAuth()
	authOK := ok && token != "" && (u == user && p == token || api == "measurements" && s.opts.AppOptics && u == token && p == "")
	ct := r.Header.Get("Content-Type")
	for _, c := range []struct {
		bad           bool
		status        int
		header, value string // set on the answer
		msg           string
	}{
		{r.URL.Path != "/v1/metrics" && r.URL.Path != "/v1/measurements", http.StatusNotFound, "", "", "not found: " + r.URL.Path},
		{r.Method != http.MethodPost, http.StatusMethodNotAllowed, "Allow", http.MethodPost, "method not allowed: " + r.Method},
		{!authOK, http.StatusUnauthorized, "WWW-Authenticate", `Basic realm="Librato API"`, "Authorization Required"},
		{ct != "application/json" && !strings.HasPrefix(ct, "application/json;"), http.StatusUnsupportedMediaType, "", "",
			fmt.Sprintf("Content-Type must be application/json, got %q", ct)},
		{readErr != nil, http.StatusBadRequest, "", "", fmt.Sprint("reading body: ", readErr)},
		{len(body) > maxBody, http.StatusRequestEntityTooLarge, "", "", "body too large"},
	} {
		if c.bad {
			if c.header != "" {
				w.Header().Set(c.header, c.value)
			}
			s.reject(w, c.status, "request", "", c.msg)
			return
		}
	}
	validate, status := s.validateMetrics, http.StatusOK
	if api == "measurements" {
		validate, status = s.validateMeasurements, http.StatusAccepted
	}
	ms, verr := validate(body)
	if verr != nil {
		s.reject(w, http.StatusBadRequest, verr.kind, verr.param, verr.msg)
		return
	}
	if r.Context().Err() != nil {
		return // the client hung up meanwhile: it will retry, so do not record
	}
	s.mu.Lock()
	s.accepted = append(s.accepted, ms...)
	s.counts.Accepted++
	s.mu.Unlock()
	w.WriteHeader(status)
}

func (s *Server) reject(w http.ResponseWriter, status int, kind, param, msg string) {
	body := writeErr(w, status, kind, param, msg)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts.Rejected++
	s.errs = append(s.errs, body)
}

// writeErr writes a Librato-shaped error body: {"errors":{"params":{param:[msg]}}}
// or {"errors":{kind:[msg]}} for the request and system kinds.
func writeErr(w http.ResponseWriter, status int, kind, param, msg string) string {
	var v any
	if kind == "params" {
		v = map[string]any{"errors": map[string]any{"params": map[string][]string{param: {msg}}}}
	} else {
		v = map[string]any{"errors": map[string][]string{kind: {msg}}}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	b := bytes.TrimSpace(buf.Bytes())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return string(b)
}

type validationError struct{ kind, param, msg string }

func paramErr(param, format string, args ...any) *validationError {
	return &validationError{kind: "params", param: param, msg: fmt.Sprintf(format, args...)}
}

func requestErr(format string, args ...any) *validationError {
	return &validationError{kind: "request", msg: fmt.Sprintf(format, args...)}
}

var (
	nameRE     = regexp.MustCompile(`^[A-Za-z0-9.:_-]{1,255}$`)
	tagNameRE  = regexp.MustCompile(`^[-.:_\w]{1,64}$`)
	tagValueRE = regexp.MustCompile(`^[-.:_?\\/\w ]{1,255}$`)
)

// allowedAttributes are the metric attributes the fake knows.
var allowedAttributes = map[string]bool{
	"display_units_short": true, "display_units_long": true, "display_min": true, "display_max": true,
	"display_stacked": true, "display_transform": true, "summarize_function": true, "aggregate": true,
	"color": true, "created_by_ua": true, "gap_detection": true,
}

func decodeStrict(body []byte, v any) *validationError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return requestErr("invalid JSON: %v", err)
	}
	if dec.More() {
		return requestErr("invalid JSON: data after the top-level object")
	}
	return nil
}

func checkValue(param string, vs ...*float64) *validationError {
	for _, v := range vs {
		if v != nil && math.Abs(*v) >= maxAbsValue {
			return paramErr(param, "value exponent too large: %v", *v)
		}
	}
	return nil
}

type legacyBody struct {
	MeasureTime *int64        `json:"measure_time"`
	Source      *string       `json:"source"`
	Gauges      []legacyGauge `json:"gauges"`
	Counters    []legacyCount `json:"counters"`
}

// plain is what a measurement of either API has.
type plain struct {
	Name       *string        `json:"name"`
	Value      *float64       `json:"value"`
	Period     *int64         `json:"period"`
	Attributes map[string]any `json:"attributes"`
}

// summary is what a gauge (metrics API) or a measurement may send instead
// of a value.
type summary struct {
	Count *int64   `json:"count"`
	Sum   *float64 `json:"sum"`
	Min   *float64 `json:"min"`
	Max   *float64 `json:"max"`
}

// legacyCount is a counter of the metrics API, and what a gauge shares with it.
type legacyCount struct {
	plain
	Source      *string `json:"source"`
	MeasureTime *int64  `json:"measure_time"`
	DisplayName *string `json:"display_name"`
	Description *string `json:"description"`
}

type legacyGauge struct {
	legacyCount
	summary
	SumSquares *float64 `json:"sum_squares"`
}

// last returns the value of the last of ps that is set (a measurement's own
// field over the request's), else def, and whether one was set.
func last[T any](def T, ps ...*T) (T, bool) {
	set := false
	for _, p := range ps {
		if p != nil {
			def, set = *p, true
		}
	}
	return def, set
}

// head checks and records, in the order the APIs report them, the name,
// what between checks (the metrics API's source, the tags), m.Time, the
// period (the last of periods set) and the attributes.
func (s *Server) head(m *Measurement, p plain, between func() *validationError, timeParam string, periods ...*int64) *validationError {
	if p.Name == nil {
		return paramErr("name", "is required")
	}
	if !nameRE.MatchString(*p.Name) {
		return paramErr("name", "is invalid: %q", *p.Name)
	}
	m.Name = *p.Name
	if err := between(); err != nil {
		return err
	}
	if time.Unix(m.Time, 0).Before(s.opts.Now().Add(-s.opts.MaxAge)) {
		return paramErr(timeParam, "is too far in the past")
	}
	if period, set := last(0, periods...); set {
		if period <= 0 {
			return paramErr("period", "must be a positive integer")
		}
		m.Period = period
	}
	for k, v := range p.Attributes {
		if !allowedAttributes[k] {
			return paramErr("attributes", "unknown attribute %q", k)
		}
		if k == "display_units_short" {
			unit, ok := v.(string)
			if !ok {
				return paramErr("attributes", "display_units_short must be a string")
			}
			m.Unit = unit
		}
	}
	return nil
}

// setValue records a value, or a summary: count and sum, with min and max.
// extra says whether fields only a summary may have, besides min and max,
// were sent; extraNames names them all for the error. kind names m.
func setValue(m *Measurement, p plain, sm summary, kind string, extra bool, extraNames string) *validationError {
	switch {
	case p.Value != nil && (sm.Count != nil || sm.Sum != nil):
		return paramErr("value", "cannot be given with count and sum (%s)", m.Name)
	case p.Value != nil:
		if sm.Min != nil || sm.Max != nil || extra {
			return paramErr("value", "%s need count and sum (%s)", extraNames, m.Name)
		}
		m.HasValue, m.Value = true, *p.Value
		return nil
	case sm.Count == nil || sm.Sum == nil:
		return paramErr("count", "a %s needs a value, or count and sum (%s)", kind, m.Name)
	}
	return setSummary(m, *sm.Count, *sm.Sum, sm.Min, sm.Max)
}

func (s *Server) validateMetrics(body []byte) ([]Measurement, *validationError) {
	var b legacyBody
	if err := decodeStrict(body, &b); err != nil {
		return nil, err
	}
	n := len(b.Gauges) + len(b.Counters)
	if n == 0 {
		return nil, requestErr("must specify at least one gauge or counter")
	}
	if n > MaxMetricsPerPost {
		return nil, requestErr("too many measurements in one request: %d > %d", n, MaxMetricsPerPost)
	}
	now := s.opts.Now().Unix()
	common := func(c legacyCount, typ string) (Measurement, *validationError) {
		m := Measurement{API: "metrics", Type: typ}
		m.Time, _ = last(now, b.MeasureTime, c.MeasureTime)
		source := func() *validationError {
			var set bool
			if m.Source, set = last("", b.Source, c.Source); !set {
				return nil
			}
			if !nameRE.MatchString(m.Source) {
				return paramErr("source", "is invalid: %q", m.Source)
			}
			if strings.EqualFold(m.Source, "all") {
				return paramErr("source", "'all' is a reserved word")
			}
			return nil
		}
		return m, s.head(&m, c.plain, source, "measure_time", c.Period)
	}
	out := make([]Measurement, 0, n)
	for _, g := range b.Gauges {
		m, err := common(g.legacyCount, "gauge")
		if err == nil {
			err = checkValue("value", g.Value, g.Sum, g.Min, g.Max, g.SumSquares)
		}
		if err == nil {
			err = setValue(&m, g.plain, g.summary, "gauge", g.SumSquares != nil, "min, max and sum_squares")
		}
		if err != nil {
			return nil, err
		}
		if g.SumSquares != nil { // a summary: setValue refused it beside a value
			m.HasSS, m.SumSquares = true, *g.SumSquares
		}
		out = append(out, m)
	}
	for _, c := range b.Counters {
		m, err := common(c, "counter")
		if err == nil && c.Value == nil {
			err = paramErr("value", "is required for counters (%s)", m.Name)
		}
		if err == nil {
			err = checkValue("value", c.Value)
		}
		if err != nil {
			return nil, err
		}
		m.HasValue, m.Value = true, *c.Value
		out = append(out, m)
	}
	return out, nil
}

type taggedBody struct {
	Tags         map[string]*string `json:"tags"`
	Time         *int64             `json:"time"`
	Period       *int64             `json:"period"`
	Measurements []taggedMeasure    `json:"measurements"`
}

type taggedMeasure struct {
	plain
	summary
	Last     *float64           `json:"last"`
	Stddev   *float64           `json:"stddev"`
	StddevM2 *float64           `json:"stddev_m2"`
	Tags     map[string]*string `json:"tags"`
	Time     *int64             `json:"time"`
}

func checkTags(tags map[string]*string) (map[string]string, *validationError) {
	if len(tags) == 0 {
		return nil, paramErr("tags", "at least one tag is required")
	}
	if len(tags) > MaxTags {
		return nil, paramErr("tags", "too many tags: %d > %d", len(tags), MaxTags)
	}
	out := make(map[string]string, len(tags))
	for k, v := range tags {
		if !tagNameRE.MatchString(k) {
			return nil, paramErr("tags", "invalid tag name %q", k)
		}
		if v == nil || !tagValueRE.MatchString(*v) {
			val := "null"
			if v != nil {
				val = fmt.Sprintf("%q", *v)
			}
			return nil, paramErr("tags", "invalid value %s for tag %q", val, k)
		}
		out[strings.ToLower(k)] = strings.ToLower(*v)
	}
	return out, nil
}

func (s *Server) validateMeasurements(body []byte) ([]Measurement, *validationError) {
	var b taggedBody
	if err := decodeStrict(body, &b); err != nil {
		return nil, err
	}
	if len(b.Measurements) == 0 {
		return nil, requestErr("must specify at least one measurement")
	}
	if len(b.Measurements) > MaxMeasurementsPerPost {
		return nil, requestErr("too many measurements in one request: %d > %d", len(b.Measurements), MaxMeasurementsPerPost)
	}
	out := make([]Measurement, 0, len(b.Measurements))
	for _, x := range b.Measurements {
		m := Measurement{API: "measurements"}
		m.Time, _ = last(s.opts.Now().Unix(), b.Time, x.Time)
		tags := func() (err *validationError) {
			tags := b.Tags
			if x.Tags != nil { // per-measurement tags replace the top-level ones
				tags = x.Tags
			}
			m.Tags, err = checkTags(tags)
			return err
		}
		err := s.head(&m, x.plain, tags, "time", b.Period, x.Period)
		if err == nil {
			err = checkValue("value", x.Value, x.Sum, x.Min, x.Max, x.Last, x.Stddev, x.StddevM2)
		}
		if err == nil && x.Value == nil && x.Count != nil && x.Sum != nil && x.Stddev != nil && x.StddevM2 != nil {
			err = paramErr("stddev", "only one of stddev and stddev_m2 may be set (%s)", m.Name)
		}
		if err == nil {
			err = setValue(&m, x.plain, x.summary, "measurement", x.Last != nil || x.Stddev != nil || x.StddevM2 != nil, "summary fields")
		}
		if err != nil {
			return nil, err
		}
		if x.Last != nil { // a summary: setValue refused it beside a value
			m.HasLast, m.Last = true, *x.Last
		}
		out = append(out, m)
	}
	return out, nil
}

// setSummary records the summary fields both APIs share (count, sum, min,
// max), checking that count is positive.
func setSummary(m *Measurement, count int64, sum float64, min, max *float64) *validationError {
	if count <= 0 {
		return paramErr("count", "must be a positive integer (%s)", m.Name)
	}
	m.Summary, m.Count, m.Sum = true, count, sum
	if min != nil {
		m.HasMin, m.Min = true, *min
	}
	if max != nil {
		m.HasMax, m.Max = true, *max
	}
	return nil
}
