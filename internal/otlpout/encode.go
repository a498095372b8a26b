package otlpout

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/outlet"
)

// Why the Collector's pdata (go.opentelemetry.io/collector/pdata/pmetric)
// and not go.opentelemetry.io/proto/otlp with google.golang.org/protobuf:
// both are canonical, and the first version of this file (git history:
// "otlpout: an OTLP/HTTP metrics outlet") used the latter. Measured on the
// shared 2-core machine, BenchmarkEncode10k -benchtime 10x, same 10,000
// series, one run after the other:
//
//	                   proto/otlp+protobuf    pdata
//	protobuf           55 ms, 130k allocs     31 ms, 114k allocs
//	JSON               182 ms, 826k allocs    43 ms, 114k allocs
//
// and a program marshalling OTLP protobuf and JSON grew by 1.4 MB with
// pmetric against 3.1 MB with proto/otlp, protojson and the protobuf
// runtime. pdata's JSON marshaller is the Collector's own, which follows the
// OTLP JSON rules (lowerCamelCase, enums as integers, 64-bit integers as
// strings). Only pmetric is imported: pmetricotlp (the request and response
// wrappers) would link gRPC into the worker, so the export response is
// decoded with proto/slim/otlp's type (response.go). A MetricsData body (what pmetric
// marshals) is byte for byte an ExportMetricsServiceRequest, both being
// `repeated ResourceMetrics resource_metrics = 1`; the tests decode every
// body with pmetric's unmarshalers (otlptest).

// scopeName is the instrumentation scope of every metric.
const scopeName = "github.com/dynometrics/dynometrics"

// sumState is the cumulative state of one count# series.
type sumState struct {
	start time.Time // start time of the running total: the series' first bucket
	last  time.Time // start of the newest bucket added
	total float64
}

// histState is the cumulative state of one measure# series.
type histState struct {
	start time.Time // start time of the cumulative histogram
	last  time.Time // start of the newest bucket merged
	h     expHist
	// With shared state (Series.Totals): the Totals.Start and the
	// Totals.Count before this histogram's first bucket, to check that
	// every bucket since was merged here.
	tStart time.Time
	base   float64
}

// metricKey identifies one OTLP Metric in a request.
type metricKey struct {
	name, unit string
	kind       metric.Kind
}

// encoder turns buckets into request bodies. Not safe for concurrent use.
type encoder struct {
	prefix      string
	temporality Temporality
	maxPoints   int
	maxBytes    int // bound on the estimated protobuf size of a request
	maxBuckets  int
	gzip        bool
	now         func() time.Time

	resource map[string]string
	tagKeys  []string // sorted
	tags     map[string]string
	tagBytes int // estimated encoded size of the tags of one data point

	sums  *outlet.LRU[seriesKey, sumState]
	hists *outlet.LRU[seriesKey, histState]

	scratch []vc
	delta   expHist // the bucket's own histogram, reused
	buf     bytes.Buffer

	late, unknown, resets int64

	marshaler pmetric.Marshaler // the protocol's: protobuf or JSON
}

func newEncoder(c Config) *encoder {
	e := &encoder{
		prefix:      outlet.PrefixWithoutApp(c.Prefix), // the app is the resource's service.name
		temporality: c.Temporality,
		maxPoints:   c.MaxPointsPerRequest,
		maxBytes:    c.MaxRequestBytes,
		maxBuckets:  c.MaxBuckets,
		gzip:        c.Compression == CompressionGzip,
		now:         c.Now,
		resource:    c.Resource,
		tagKeys:     slices.Sorted(maps.Keys(c.Tags)),
		tags:        maps.Clone(c.Tags),
		tagBytes:    tagBytes(c.Tags),
		sums:        outlet.NewLRU[seriesKey, sumState](c.MaxTrackedSeries, cloneKey),
		hists:       outlet.NewLRU[seriesKey, histState](c.MaxTrackedHistograms, cloneKey),
	}
	e.marshaler = &pmetric.ProtoMarshaler{}
	if c.Protocol == HTTPJSON {
		e.marshaler = &pmetric.JSONMarshaler{}
		// The estimate is of the protobuf encoding; the JSON of the same
		// request is about 3 times larger (BenchmarkEncode10k: 5.5 MB
		// against 1.8 MB).
		e.maxBytes /= 4
	}
	return e
}

func tagBytes(tags map[string]string) int {
	n := 0
	for k, v := range tags {
		n += attrBytes + len(k) + len(v)
	}
	return n
}

// name returns the OTLP metric name of an input name: Prefix + "." + name,
// with invalid UTF-8 replaced by U+FFFD (protobuf refuses it in strings).
func (e *encoder) name(n string) string {
	n = strings.ToValidUTF8(n, "\uFFFD")
	if e.prefix == "" {
		return n
	}
	return e.prefix + "." + n
}

// pointTimes returns the start and time of bucket b's data points: the
// bucket start, and the bucket end but never later than now (a partial
// bucket flushed at shutdown) nor earlier than the start.
func (e *encoder) pointTimes(b *aggregate.Bucket) (start, end uint64) {
	start = unixNano(b.Start)
	return start, max(min(unixNano(b.Start.Add(b.Period)), unixNano(e.now())), start)
}

func unixNano(t time.Time) uint64 {
	if t.IsZero() || t.UnixNano() < 0 {
		return 0
	}
	return uint64(t.UnixNano())
}

func (e *encoder) aggTemporality() pmetric.AggregationTemporality {
	if e.temporality == Delta {
		return pmetric.AggregationTemporalityDelta
	}
	return pmetric.AggregationTemporalityCumulative
}

// request collects the metrics of one request body: one resource per app
// (a single one in single-app mode), each with its scope and metrics.
type request struct {
	md      pmetric.Metrics
	metrics pmetric.MetricSlice // of the current resource
	index   map[metricKey]pmetric.Metric
	app     string // of the current resource
	started bool   // a resource was added
	points  int
	size    int // estimated protobuf size, an upper bound
}

// addResource starts app's resource in req: the configured resource
// attributes, with service.name the app in multi-app mode (app not empty).
func (e *encoder) addResource(req *request, app string) {
	rm := req.md.ResourceMetrics().AppendEmpty()
	attrs := rm.Resource().Attributes()
	attrs.EnsureCapacity(len(e.resource) + 1)
	for _, k := range slices.Sorted(maps.Keys(e.resource)) {
		if app == "" || k != ServiceNameKey {
			attrs.PutStr(k, e.resource[k])
		}
	}
	if app != "" {
		attrs.PutStr(ServiceNameKey, app)
	}
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(scopeName)
	capacity := e.maxPoints
	if app != "" {
		capacity = min(capacity, 256) // one resource of several
		req.size += attrBytes + len(ServiceNameKey) + len(app)
	}
	sm.Metrics().EnsureCapacity(capacity)
	req.metrics, req.app, req.started = sm.Metrics(), app, true
	req.index = make(map[metricKey]pmetric.Metric, min(capacity, 4096))
	req.size += tagBytes(e.resource) + len(scopeName) + metricBytes
}

// encode turns bucket b into request bodies of at most maxPoints data points
// and maxBytes estimated bytes each, and calls emit with each body and its
// number of points. It updates the cumulative state even for series it does
// not send (late buckets).
func (e *encoder) encode(b *aggregate.Bucket, emit func(body []byte, points int)) error {
	start, end := e.pointTimes(b)
	req := request{md: pmetric.NewMetrics()}
	flush := func() error {
		if req.points == 0 {
			return nil
		}
		body, err := e.marshal(req.md)
		if err != nil {
			return err
		}
		emit(body, req.points)
		req = request{md: pmetric.NewMetrics()}
		return nil
	}
	for i := range b.Series {
		s := &b.Series[i]
		k := metricKey{name: s.Name, unit: s.Unit, kind: s.Kind}
		sk := seriesKey{app: s.App, name: s.Name, unit: s.Unit, source: s.Source}
		// The value first: it updates the cumulative state, sent or not.
		var (
			v  float64
			st = start
			h  *expHist
			ok = true
		)
		switch s.Kind {
		case metric.Counter:
			v, st, ok = e.counterValue(s, sk, b, start)
		case metric.Sample:
			v = s.Last
		case metric.Measure:
			h, st, ok = e.histogram(s, sk, b, start)
		default:
			e.unknown++
			continue
		}
		if !ok {
			continue
		}
		if !req.started || s.App != req.app { // series come sorted by app
			e.addResource(&req, s.App)
		}
		size, msize := e.pointSize(s, h), 0
		mt, known := req.index[k]
		if !known {
			msize = e.metricSize(s)
		}
		if req.points > 0 && (req.points == e.maxPoints || req.size+size+msize > e.maxBytes) {
			if err := flush(); err != nil {
				return err
			}
			e.addResource(&req, s.App)
			msize, known = e.metricSize(s), false
		}
		req.size += size + msize
		if !known {
			mt = req.metrics.AppendEmpty()
			mt.SetName(e.name(s.Name))
			mt.SetUnit(UCUM(s.Unit))
			switch s.Kind {
			case metric.Counter:
				sum := mt.SetEmptySum()
				sum.SetIsMonotonic(true)
				sum.SetAggregationTemporality(e.aggTemporality())
			case metric.Sample:
				mt.SetEmptyGauge()
			case metric.Measure:
				mt.SetEmptyExponentialHistogram().SetAggregationTemporality(e.aggTemporality())
			}
			req.index[k] = mt
		}
		switch s.Kind {
		case metric.Counter:
			newPoint(e, mt.Sum().DataPoints().AppendEmpty(), s.Source, st, end).SetDoubleValue(v)
		case metric.Sample:
			newPoint(e, mt.Gauge().DataPoints().AppendEmpty(), s.Source, st, end).SetDoubleValue(v)
		case metric.Measure:
			fillHistogram(newPoint(e, mt.ExponentialHistogram().DataPoints().AppendEmpty(), s.Source, st, end), h)
		}
		req.points++
	}
	return flush()
}

// counterValue returns the value and start time of a count# data point; ok
// is false when the point is not sent
// (a late bucket, whose sum went into the running total).
func (e *encoder) counterValue(s *aggregate.Series, k seriesKey, b *aggregate.Bucket, bucketStart uint64) (v float64, start uint64, ok bool) {
	if e.temporality == Delta {
		return s.Sum, bucketStart, true
	}
	if s.Totals != nil {
		return s.Totals.Sum, unixNano(s.Totals.Start), true
	}
	st, created := e.sums.Get(k)
	st.total += s.Sum // sent or not
	if created {
		st.start = b.Start
	} else if !b.Start.After(st.last) {
		e.late++
		return 0, 0, false
	}
	st.last = b.Start
	return st.total, unixNano(st.start), true
}

// histogram returns the histogram of a measure# data point (the bucket's
// own, or the series' cumulative one) and its start time; ok is false
// when the point is not sent (a late bucket, merged into the cumulative
// histogram). The result is valid until the next call.
func (e *encoder) histogram(s *aggregate.Series, k seriesKey, b *aggregate.Bucket, bucketStart uint64) (*expHist, uint64, bool) {
	delta := &e.delta
	delta.build(s, e.maxBuckets, &e.scratch)
	if e.temporality == Delta {
		return delta, bucketStart, true
	}
	st, created := e.hists.Get(k)
	switch {
	case created:
		*st = histState{start: b.Start, last: b.Start, h: delta.clone()}
		if s.Totals != nil {
			st.tStart, st.base = s.Totals.Start, s.Totals.Count-float64(delta.count)
		}
	case !b.Start.After(st.last):
		st.h.merge(delta, e.maxBuckets)
		e.late++
		return nil, 0, false
	case s.Totals != nil && (!s.Totals.Start.Equal(st.tStart) || s.Totals.Count != st.base+float64(st.h.count+delta.count)):
		// Another worker flushed buckets of this series since (or the
		// shared totals restarted): this histogram misses them, so it
		// starts again at this bucket, which OTLP reads as a reset.
		*st = histState{start: b.Start, last: b.Start, h: delta.clone(), tStart: s.Totals.Start, base: s.Totals.Count - float64(delta.count)}
		e.resets++
	default:
		st.h.merge(delta, e.maxBuckets)
		st.last = b.Start
	}
	return &st.h, unixNano(st.start), true
}

// Sizes for the request size estimate: upper bounds of the protobuf
// encoding of a data point's fixed fields (fixed64 times, value, count,
// sum, min, max, scale, zero count, offsets, tags and lengths), of an
// attribute beyond its key and value, and of a metric beyond its name and
// unit.
const (
	numberPointBytes = 40
	histPointBytes   = 128
	attrBytes        = 12
	metricBytes      = 24
)

// pointSize returns an upper bound of the encoded size of s's data point
// (h is its histogram for a measure).
func (e *encoder) pointSize(s *aggregate.Series, h *expHist) int {
	n := numberPointBytes
	if h != nil {
		n = histPointBytes
		for _, b := range h.b {
			for _, c := range b.counts {
				n += protowire.SizeVarint(c)
			}
		}
	}
	if s.Source != "" {
		n += attrBytes + len(SourceKey) + 3*len(s.Source) // each invalid byte may become U+FFFD, 3 bytes
	}
	return n + e.tagBytes
}

// metricSize returns an upper bound of the encoded size of s's metric
// without its data points.
func (e *encoder) metricSize(s *aggregate.Series) int {
	return metricBytes + len(e.prefix) + 1 + 3*len(s.Name) + len(UCUM(s.Unit))
}

// dataPoint is what the data points of the three kinds share.
type dataPoint interface {
	Attributes() pcommon.Map
	SetStartTimestamp(pcommon.Timestamp)
	SetTimestamp(pcommon.Timestamp)
}

// newPoint sets the attributes of dp (source, then the tags) and its times,
// and returns it.
func newPoint[P dataPoint](e *encoder, dp P, source string, start, end uint64) P {
	m := dp.Attributes()
	m.EnsureCapacity(len(e.tagKeys) + 1)
	if source != "" {
		m.PutStr(SourceKey, strings.ToValidUTF8(source, "\uFFFD"))
	}
	for _, k := range e.tagKeys {
		m.PutStr(k, e.tags[k])
	}
	dp.SetStartTimestamp(pcommon.Timestamp(start))
	dp.SetTimestamp(pcommon.Timestamp(end))
	return dp
}

// fillHistogram copies h into dp.
func fillHistogram(dp pmetric.ExponentialHistogramDataPoint, h *expHist) {
	dp.SetCount(h.count)
	dp.SetSum(h.sum)
	dp.SetScale(h.scale)
	dp.SetZeroCount(h.zero)
	if h.count > 0 {
		dp.SetMin(h.min)
		dp.SetMax(h.max)
	}
	for i, out := range [2]pmetric.ExponentialHistogramDataPointBuckets{dp.Positive(), dp.Negative()} {
		if b := h.b[i]; len(b.counts) > 0 {
			out.SetOffset(b.offset)
			out.BucketCounts().FromRaw(b.counts)
		}
	}
}

var gzipPool = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// marshal encodes one request body (compressed when configured).
func (e *encoder) marshal(md pmetric.Metrics) ([]byte, error) {
	raw, err := e.marshaler.MarshalMetrics(md)
	if err != nil {
		return nil, fmt.Errorf("otlp: encode: %w", err)
	}
	if !e.gzip {
		return raw, nil
	}
	e.buf.Reset()
	zw := gzipPool.Get().(*gzip.Writer)
	defer gzipPool.Put(zw)
	zw.Reset(&e.buf)
	if _, err := zw.Write(raw); err != nil {
		return nil, fmt.Errorf("otlp: gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("otlp: gzip: %w", err)
	}
	return bytes.Clone(e.buf.Bytes()), nil
}
