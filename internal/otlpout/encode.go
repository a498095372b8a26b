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
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// Why go.opentelemetry.io/proto/otlp and google.golang.org/protobuf, and not
// the Collector's pdata: these are the canonical generated OTLP types, and
// protobuf is already a dependency; pdata would add the Collector's module
// and, through pmetricotlp, gRPC to the worker. We build a MetricsData (the
// metrics/v1 package, which imports only protobuf) instead of the collector
// package's ExportMetricsServiceRequest, whose package also holds the gRPC
// service and gateway and would pull google.golang.org/grpc into the
// binary: both messages are `repeated ResourceMetrics resource_metrics = 1`,
// so their protobuf and JSON encodings are identical (the tests decode every
// body with pdata's ExportRequest unmarshalers). protojson with
// UseEnumNumbers gives the OTLP JSON rules: lowerCamelCase field names,
// enums as integers, 64-bit integers as strings. BenchmarkEncode10k measures
// this encoder beside the remote-write and Librato ones, and
// BenchmarkPdataEncode10k the same data built and marshalled with pdata (a
// test dependency) for comparison; see docs/drafts/otlpout.md for numbers.

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
	maxBuckets  int
	protocol    Protocol
	gzip        bool
	now         func() time.Time

	resource *resourcepb.Resource
	scope    *commonpb.InstrumentationScope
	tags     []*commonpb.KeyValue // sorted by key

	sums  *lru[sumState]
	hists *lru[histState]

	scratch []vc
	buf     bytes.Buffer

	late, unknown, resets int64
}

func newEncoder(c Config) *encoder {
	e := &encoder{
		prefix:      c.Prefix,
		temporality: c.Temporality,
		maxPoints:   c.MaxPointsPerRequest,
		maxBuckets:  c.MaxBuckets,
		protocol:    c.Protocol,
		gzip:        c.Compression == CompressionGzip,
		now:         c.Now,
		resource:    &resourcepb.Resource{Attributes: keyValues(c.Resource)},
		scope:       &commonpb.InstrumentationScope{Name: scopeName},
		tags:        keyValues(c.Tags),
		sums:        newLRU[sumState](c.MaxTrackedSeries),
		hists:       newLRU[histState](c.MaxTrackedHistograms),
	}
	return e
}

func keyValues(m map[string]string) []*commonpb.KeyValue {
	kvs := make([]*commonpb.KeyValue, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		kvs = append(kvs, stringKV(k, m[k]))
	}
	return kvs
}

func stringKV(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
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
	t := b.Start.Add(b.Period)
	if now := e.now(); now.Before(t) {
		t = now
	}
	if t.Before(b.Start) {
		t = b.Start
	}
	return unixNano(b.Start), unixNano(t)
}

func unixNano(t time.Time) uint64 {
	if t.IsZero() || t.UnixNano() < 0 {
		return 0
	}
	return uint64(t.UnixNano())
}

func (e *encoder) aggTemporality() metricspb.AggregationTemporality {
	if e.temporality == Delta {
		return metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
	}
	return metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE
}

// request collects the metrics of one request body.
type request struct {
	metrics []*metricspb.Metric
	index   map[metricKey]*metricspb.Metric
	points  int
}

// encode turns bucket b into request bodies of at most maxPoints data points
// each and calls emit with each body and its number of points. It updates
// the cumulative state even for series it does not send (late buckets).
func (e *encoder) encode(b *aggregate.Bucket, emit func(body []byte, points int)) error {
	start, end := e.pointTimes(b)
	req := request{index: map[metricKey]*metricspb.Metric{}}
	flush := func() error {
		if req.points == 0 {
			return nil
		}
		body, err := e.marshal(req.metrics)
		if err != nil {
			return err
		}
		emit(body, req.points)
		req = request{index: map[metricKey]*metricspb.Metric{}}
		return nil
	}
	for i := range b.Series {
		s := &b.Series[i]
		if s.Kind != metric.Counter && s.Kind != metric.Sample && s.Kind != metric.Measure {
			e.unknown++
			continue
		}
		if req.points == e.maxPoints {
			if err := flush(); err != nil {
				return err
			}
		}
		attrs := e.tags
		if s.Source != "" {
			attrs = make([]*commonpb.KeyValue, 0, len(e.tags)+1)
			attrs = append(attrs, stringKV(SourceKey, strings.ToValidUTF8(s.Source, "\uFFFD")))
			attrs = append(attrs, e.tags...)
		}
		k := metricKey{name: s.Name, unit: s.Unit, kind: s.Kind}
		sk := seriesKey{name: s.Name, unit: s.Unit, source: s.Source}
		m := req.index[k]
		newMetric := func(data func() *metricspb.Metric) *metricspb.Metric {
			if m == nil {
				m = data()
				m.Name, m.Unit = e.name(s.Name), UCUM(s.Unit)
				req.index[k] = m
				req.metrics = append(req.metrics, m)
			}
			return m
		}
		switch s.Kind {
		case metric.Counter:
			dp := &metricspb.NumberDataPoint{Attributes: attrs, StartTimeUnixNano: start, TimeUnixNano: end}
			v, ok := e.counterValue(s, sk, b, dp)
			if !ok {
				continue
			}
			dp.Value = &metricspb.NumberDataPoint_AsDouble{AsDouble: v}
			sum := newMetric(func() *metricspb.Metric {
				return &metricspb.Metric{Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
					AggregationTemporality: e.aggTemporality(), IsMonotonic: true}}}
			}).GetSum()
			sum.DataPoints = append(sum.DataPoints, dp)
		case metric.Sample:
			dp := &metricspb.NumberDataPoint{Attributes: attrs, StartTimeUnixNano: start, TimeUnixNano: end,
				Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: s.Last}}
			g := newMetric(func() *metricspb.Metric {
				return &metricspb.Metric{Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{}}}
			}).GetGauge()
			g.DataPoints = append(g.DataPoints, dp)
		case metric.Measure:
			dp := &metricspb.ExponentialHistogramDataPoint{Attributes: attrs, StartTimeUnixNano: start, TimeUnixNano: end}
			h, ok := e.histogram(s, sk, b, dp)
			if !ok {
				continue
			}
			fillHistogram(dp, h)
			eh := newMetric(func() *metricspb.Metric {
				return &metricspb.Metric{Data: &metricspb.Metric_ExponentialHistogram{ExponentialHistogram: &metricspb.ExponentialHistogram{
					AggregationTemporality: e.aggTemporality()}}}
			}).GetExponentialHistogram()
			eh.DataPoints = append(eh.DataPoints, dp)
		}
		req.points++
	}
	return flush()
}

// counterValue returns the value of a count# data point and sets its start
// time for cumulative temporality; ok is false when the point is not sent
// (a late bucket, whose sum went into the running total).
func (e *encoder) counterValue(s *aggregate.Series, k seriesKey, b *aggregate.Bucket, dp *metricspb.NumberDataPoint) (float64, bool) {
	if e.temporality == Delta {
		return s.Sum, true
	}
	if s.Totals != nil {
		dp.StartTimeUnixNano = unixNano(s.Totals.Start)
		return s.Totals.Sum, true
	}
	st, created := e.sums.get(k)
	if created {
		st.start = b.Start
	} else if !b.Start.After(st.last) {
		st.total += s.Sum
		e.late++
		return 0, false
	}
	st.total += s.Sum
	st.last = b.Start
	dp.StartTimeUnixNano = unixNano(st.start)
	return st.total, true
}

// histogram returns the histogram of a measure# data point (the bucket's
// own, or the series' cumulative one) and sets its start time; ok is false
// when the point is not sent (a late bucket, merged into the cumulative
// histogram). The result is valid until the next call.
func (e *encoder) histogram(s *aggregate.Series, k seriesKey, b *aggregate.Bucket, dp *metricspb.ExponentialHistogramDataPoint) (*expHist, bool) {
	delta := expHist{}
	delta.build(s, e.maxBuckets, &e.scratch)
	if e.temporality == Delta {
		return &delta, true
	}
	st, created := e.hists.get(k)
	switch {
	case created:
		*st = histState{start: b.Start, last: b.Start, h: delta}
		if s.Totals != nil {
			st.tStart, st.base = s.Totals.Start, s.Totals.Count-float64(delta.count)
		}
	case !b.Start.After(st.last):
		st.h.merge(&delta, e.maxBuckets)
		e.late++
		return nil, false
	case s.Totals != nil && (!s.Totals.Start.Equal(st.tStart) || s.Totals.Count != st.base+float64(st.h.count+delta.count)):
		// Another worker flushed buckets of this series since (or the
		// shared totals restarted): this histogram misses them, so it
		// starts again at this bucket, which OTLP reads as a reset.
		*st = histState{start: b.Start, last: b.Start, h: delta, tStart: s.Totals.Start, base: s.Totals.Count - float64(delta.count)}
		e.resets++
	default:
		st.h.merge(&delta, e.maxBuckets)
		st.last = b.Start
	}
	dp.StartTimeUnixNano = unixNano(st.start)
	return &st.h, true
}

// fillHistogram copies h into dp.
func fillHistogram(dp *metricspb.ExponentialHistogramDataPoint, h *expHist) {
	sum, lo, hi := h.sum, h.min, h.max
	dp.Count = h.count
	dp.Sum = &sum
	dp.Scale = h.scale
	dp.ZeroCount = h.zero
	if h.count > 0 {
		dp.Min, dp.Max = &lo, &hi
	}
	if len(h.pos.counts) > 0 {
		dp.Positive = &metricspb.ExponentialHistogramDataPoint_Buckets{Offset: h.pos.offset, BucketCounts: slices.Clone(h.pos.counts)}
	}
	if len(h.neg.counts) > 0 {
		dp.Negative = &metricspb.ExponentialHistogramDataPoint_Buckets{Offset: h.neg.offset, BucketCounts: slices.Clone(h.neg.counts)}
	}
}

var gzipPool = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// marshal encodes one request body (compressed when configured).
func (e *encoder) marshal(metrics []*metricspb.Metric) ([]byte, error) {
	md := &metricspb.MetricsData{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource:     e.resource,
		ScopeMetrics: []*metricspb.ScopeMetrics{{Scope: e.scope, Metrics: metrics}},
	}}}
	var raw []byte
	var err error
	if e.protocol == HTTPJSON {
		raw, err = protojson.MarshalOptions{UseEnumNumbers: true}.Marshal(md)
	} else {
		raw, err = proto.Marshal(md)
	}
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
