// Package otlptest is a strict OTLP/HTTP metrics receiver for tests: it
// decodes every request with the OpenTelemetry Collector's own pdata
// unmarshalers (pmetric's, protobuf and JSON, gzip or identity: an
// ExportMetricsServiceRequest is wire-compatible with the MetricsData they
// read), answers with the canonical generated response type, checks
// what the OTLP specification requires of it, records every data point in a
// flat form tests can compare, and answers with injected faults (status,
// Retry-After, delay, partial success) when told to. It listens on
// 127.0.0.1 and stops with the test.
package otlptest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	colmetricspb "go.opentelemetry.io/proto/slim/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Path is where the receiver takes metrics.
const Path = "/v1/metrics"

// Point is one received data point with its metric and resource.
type Point struct {
	Resource    map[string]string
	Scope       string
	Name, Unit  string
	Type        string // "sum", "gauge", "exphist" (anything else is refused)
	Temporality string // "delta", "cumulative", "" for gauges
	Monotonic   bool
	Start, Time time.Time
	Attrs       map[string]string

	Value float64 // sum and gauge

	// Exponential histograms.
	Count                      uint64
	Sum, Min, Max              float64
	HasSum, HasMin, HasMax     bool
	Scale                      int32
	Zero                       uint64
	ZeroThreshold              float64
	PosOffset, NegOffset       int32
	Pos, Neg                   []uint64
	ContentType, Encoding      string // of the request that carried it
	Request                    int    // 1-based number of the accepted request
	RequestPoints, RequestSize int    // points and body bytes (as sent) of that request
}

// Key returns "name{k=v,…}" with sorted attributes, for lookups.
func (p Point) Key() string {
	var b strings.Builder
	b.WriteString(p.Name)
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(p.Attrs)) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%s", k, p.Attrs[k])
	}
	b.WriteByte('}')
	return b.String()
}

// Fault is one scripted answer, used instead of accepting a request.
type Fault struct {
	Status     int           // HTTP status to answer (0: accept, e.g. with Partial)
	RetryAfter string        // Retry-After header value
	Body       string        // response body for Status
	Delay      time.Duration // wait before answering (or until the client gives up)
	// Partial, with Status 0, accepts the request and answers with a
	// partial_success rejecting this many points and this message.
	PartialRejected int64
	PartialMessage  string
}

// Options configure a Receiver.
type Options struct {
	// Headers every request must carry (e.g. Authorization); a request
	// without them gets 401.
	Headers map[string]string
}

// Receiver is a running fake. Safe for concurrent use.
type Receiver struct {
	URL string // base URL; POST URL + Path

	opt    Options
	mu     sync.Mutex
	faults []Fault
	points []Point
	errs   []string
	counts Counts
}

// Counts are what the receiver answered.
type Counts struct {
	Requests, Accepted, Faults, Unauthorized, Invalid int
}

// New starts a receiver on 127.0.0.1 that stops when the test ends.
func New(t testing.TB, opt Options) *Receiver {
	r, stop := Start(opt)
	t.Cleanup(stop)
	return r
}

// Start starts a receiver on 127.0.0.1; stop it with the returned function.
func Start(opt Options) (r *Receiver, stop func()) {
	r = &Receiver{opt: opt}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = srv.URL
	return r, srv.Close
}

// Inject queues n copies of f: the next n requests get f.
func (r *Receiver) Inject(n int, f Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = append(r.faults, slices.Repeat([]Fault{f}, max(n, 0))...)
}

// Points returns every accepted data point, in arrival order.
func (r *Receiver) Points() []Point {
	return locked(r, func() []Point { return slices.Clone(r.points) })
}

// Errors returns why requests were refused as invalid (empty when every
// request was valid OTLP).
func (r *Receiver) Errors() []string {
	return locked(r, func() []string { return slices.Clone(r.errs) })
}

// Counts returns the answer counts so far.
func (r *Receiver) Counts() Counts { return locked(r, func() Counts { return r.counts }) }

// locked returns f() computed with r.mu held.
func locked[T any](r *Receiver, f func() T) T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return f()
}

func (r *Receiver) invalid(w http.ResponseWriter, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.errs = append(r.errs, msg)
	r.counts.Invalid++
	r.mu.Unlock()
	http.Error(w, msg, http.StatusBadRequest)
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	raw, err := io.ReadAll(req.Body)
	if err != nil {
		r.invalid(w, "read body: %v", err)
		return
	}
	r.mu.Lock()
	r.counts.Requests++
	var fault Fault // the zero Fault accepts
	if len(r.faults) > 0 {
		fault, r.faults = r.faults[0], r.faults[1:]
		if fault.Status != 0 {
			r.counts.Faults++
		}
	}
	r.mu.Unlock()
	if fault.Delay > 0 {
		select {
		case <-time.After(fault.Delay):
		case <-req.Context().Done():
			return
		}
	}
	if fault.Status != 0 {
		if fault.RetryAfter != "" {
			w.Header().Set("Retry-After", fault.RetryAfter)
		}
		w.WriteHeader(fault.Status)
		_, _ = io.WriteString(w, fault.Body)
		return
	}
	for k, v := range r.opt.Headers {
		if req.Header.Get(k) != v {
			r.mu.Lock()
			r.counts.Unauthorized++
			r.mu.Unlock()
			http.Error(w, "missing or wrong "+k, http.StatusUnauthorized)
			return
		}
	}
	if req.Method != http.MethodPost || req.URL.Path != Path {
		r.invalid(w, "%s %s: want POST %s", req.Method, req.URL.Path, Path)
		return
	}
	body := raw
	enc := req.Header.Get("Content-Encoding")
	switch enc {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err == nil {
			body, err = io.ReadAll(zr)
		}
		if err != nil {
			r.invalid(w, "gzip: %v", err)
			return
		}
	default:
		r.invalid(w, "Content-Encoding %q", enc)
		return
	}
	ct := req.Header.Get("Content-Type")
	var md pmetric.Metrics
	switch ct {
	case "application/x-protobuf":
		md, err = (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(body)
	case "application/json":
		md, err = (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(body)
	default:
		r.invalid(w, "Content-Type %q", ct)
		return
	}
	if err != nil {
		r.invalid(w, "decode %s: %v", ct, err)
		return
	}
	points, err := flatten(md)
	if err != nil {
		r.invalid(w, "%v", err)
		return
	}
	r.mu.Lock()
	r.counts.Accepted++
	n := r.counts.Accepted
	for i := range points {
		points[i].ContentType, points[i].Encoding = ct, enc
		points[i].Request, points[i].RequestPoints, points[i].RequestSize = n, len(points), len(raw)
	}
	r.points = append(r.points, points...)
	r.mu.Unlock()

	resp := &colmetricspb.ExportMetricsServiceResponse{}
	if fault.PartialRejected != 0 || fault.PartialMessage != "" {
		resp.PartialSuccess = &colmetricspb.ExportMetricsPartialSuccess{
			RejectedDataPoints: fault.PartialRejected, ErrorMessage: fault.PartialMessage}
	}
	var out []byte
	if ct == "application/json" {
		out, err = protojson.Marshal(resp)
	} else {
		out, err = proto.Marshal(resp)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ct)
	_, _ = w.Write(out)
}

func attrs(m pcommon.Map) map[string]string {
	out := map[string]string{}
	m.Range(func(k string, v pcommon.Value) bool {
		out[k] = v.AsString()
		return true
	})
	return out
}

// temporality returns "delta", "cumulative" or "unspecified".
func temporality(t pmetric.AggregationTemporality) string { return strings.ToLower(t.String()) }

// flatten turns a request into points, checking the rules a receiver
// relies on: a name, a temporality on sums and histograms, time not before
// start, histogram counts that add up.
func flatten(md pmetric.Metrics) ([]Point, error) {
	var out []Point
	for _, rm := range md.ResourceMetrics().All() {
		res := attrs(rm.Resource().Attributes())
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				if m.Name() == "" {
					return nil, fmt.Errorf("metric without a name")
				}
				base := Point{Resource: res, Scope: sm.Scope().Name(), Name: m.Name(), Unit: m.Unit()}
				switch m.Type() {
				case pmetric.MetricTypeSum:
					base.Type, base.Temporality, base.Monotonic = "sum", temporality(m.Sum().AggregationTemporality()), m.Sum().IsMonotonic()
					if base.Temporality == "unspecified" {
						return nil, fmt.Errorf("%s: sum without temporality", m.Name())
					}
					out = numbers(out, base, m.Sum().DataPoints())
				case pmetric.MetricTypeGauge:
					base.Type = "gauge"
					out = numbers(out, base, m.Gauge().DataPoints())
				case pmetric.MetricTypeExponentialHistogram:
					base.Type, base.Temporality = "exphist", temporality(m.ExponentialHistogram().AggregationTemporality())
					if base.Temporality == "unspecified" {
						return nil, fmt.Errorf("%s: histogram without temporality", m.Name())
					}
					for _, dp := range m.ExponentialHistogram().DataPoints().All() {
						p := base
						p.Attrs = attrs(dp.Attributes())
						p.Start, p.Time = dp.StartTimestamp().AsTime(), dp.Timestamp().AsTime()
						p.Count, p.Scale, p.Zero, p.ZeroThreshold = dp.Count(), dp.Scale(), dp.ZeroCount(), dp.ZeroThreshold()
						p.Sum, p.HasSum, p.Min, p.HasMin, p.Max, p.HasMax = dp.Sum(), dp.HasSum(), dp.Min(), dp.HasMin(), dp.Max(), dp.HasMax()
						p.PosOffset, p.Pos = dp.Positive().Offset(), dp.Positive().BucketCounts().AsRaw()
						p.NegOffset, p.Neg = dp.Negative().Offset(), dp.Negative().BucketCounts().AsRaw()
						total := p.Zero
						for _, c := range slices.Concat(p.Pos, p.Neg) {
							total += c
						}
						if total != p.Count {
							return nil, fmt.Errorf("%s %v: count %d, buckets add up to %d", m.Name(), p.Attrs, p.Count, total)
						}
						if p.Scale < -10 || p.Scale > 20 {
							return nil, fmt.Errorf("%s: scale %d out of [-10, 20]", m.Name(), p.Scale)
						}
						out = append(out, p)
					}
				default:
					return nil, fmt.Errorf("%s: unexpected metric type %v", m.Name(), m.Type())
				}
			}
		}
	}
	for _, p := range out {
		if p.Time.Before(p.Start) {
			return nil, fmt.Errorf("%s: time %v before start %v", p.Key(), p.Time, p.Start)
		}
		if p.Time.IsZero() || p.Time.Unix() <= 0 {
			return nil, fmt.Errorf("%s: no time", p.Key())
		}
	}
	return out, nil
}

// numbers appends the sum or gauge points dps to out.
func numbers(out []Point, base Point, dps pmetric.NumberDataPointSlice) []Point {
	for _, dp := range dps.All() {
		p := base
		p.Attrs = attrs(dp.Attributes())
		p.Start, p.Time = dp.StartTimestamp().AsTime(), dp.Timestamp().AsTime()
		p.Value = dp.DoubleValue()
		if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
			p.Value = float64(dp.IntValue())
		}
		out = append(out, p)
	}
	return out
}
