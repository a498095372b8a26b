package otlp

import (
	"hash/maphash"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/l2met"
	"github.com/dynometrics/dynometrics/internal/metric"
	commonpb "go.opentelemetry.io/proto/slim/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/slim/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"
)

const (
	temporalityDelta      = metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
	temporalityCumulative = metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE
	noRecordedValue       = uint32(metricspb.DataPointFlags_DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK)
)

// point is a data point of any metric type.
type point interface {
	comparable
	GetAttributes() []*commonpb.KeyValue
	GetTimeUnixNano() uint64
	GetStartTimeUnixNano() uint64
}

// checkMetrics enforces the bounds and the consistency of the data points of
// a decoded request, removing the points it rejects, and counts what it keeps.
func (r *Receiver) checkMetrics(d *metricspb.MetricsData) result {
	var res result
	for _, rm := range d.GetResourceMetrics() {
		if len(rm.GetResource().GetAttributes()) > MaxAttributes {
			n := int64(0)
			for _, sm := range rm.GetScopeMetrics() {
				for _, m := range sm.GetMetrics() {
					n += int64(pointCount(m))
				}
			}
			res.reject(&res.tooManyAtt, n, "resource with more than "+strconv.Itoa(MaxAttributes)+" attributes")
			rm.ScopeMetrics = nil
			continue
		}
		resSource := r.source(rm.GetResource().GetAttributes())
		src := func(attrs []*commonpb.KeyValue) string { return r.sourceOf(attrs, resSource) }
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				if m == nil {
					continue
				}
				why := ""
				switch {
				case m.Name == "" || len(m.Name) > l2met.MaxNameLen:
					why = "metric name empty or longer than " + strconv.Itoa(l2met.MaxNameLen) + " bytes"
				case metric.UnsafeText(m.Name):
					why = "metric name with a control, format or bidirectional-override character"
					res.unsafe += int64(pointCount(m))
				}
				switch data := m.Data.(type) {
				case *metricspb.Metric_Gauge:
					data.Gauge.DataPoints = filter(&res, m.Name, why, data.Gauge.DataPoints, nil, src)
				case *metricspb.Metric_Sum:
					s := data.Sum
					valid := func(p *metricspb.NumberDataPoint) string { return "" }
					if s.IsMonotonic && s.AggregationTemporality != temporalityCumulative {
						// A monotonic delta sum only increases (the
						// specification's data model): a negative delta is not
						// a count.
						valid = func(p *metricspb.NumberDataPoint) string {
							if v, ok := p.Value.(*metricspb.NumberDataPoint_AsDouble); ok && v.AsDouble < 0 ||
								p.GetAsInt() < 0 {
								res.negative++
								return "negative value on a monotonic delta sum"
							}
							return ""
						}
					}
					// An UpDownCounter's cumulative level needs no time.
					s.DataPoints = filterTemporal(&res, m.Name, why, s.AggregationTemporality, s.IsMonotonic, s.DataPoints, valid, src)
				case *metricspb.Metric_Histogram:
					h := data.Histogram
					h.DataPoints = filterTemporal(&res, m.Name, why, h.AggregationTemporality, true, h.DataPoints, validHistogram, src)
				case *metricspb.Metric_ExponentialHistogram:
					h := data.ExponentialHistogram
					h.DataPoints = filterTemporal(&res, m.Name, why, h.AggregationTemporality, true, h.DataPoints, validExponential, src)
				case *metricspb.Metric_Summary:
					n := len(data.Summary.DataPoints)
					res.reject(&res.summaries, int64(n), m.Name+": Summary points are not converted (their quantiles do not merge)")
					data.Summary.DataPoints = nil
				}
			}
		}
	}
	return res
}

// filterTemporal is filter for the points of a sum or histogram: the
// temporality must be known, a cumulative point needs a time when timed, and
// each point must pass valid.
func filterTemporal[P point](res *result, name, why string, t metricspb.AggregationTemporality, timed bool, pts []P, valid func(P) string, src func([]*commonpb.KeyValue) string) []P {
	if why == "" && t != temporalityDelta && t != temporalityCumulative {
		why = "aggregation_temporality unspecified"
	}
	return filter(res, name, why, pts, func(p P) string {
		if timed && t == temporalityCumulative && p.GetTimeUnixNano() == 0 {
			return "cumulative point without time_unix_nano"
		}
		return valid(p)
	}, src)
}

func pointCount(m *metricspb.Metric) int {
	switch data := m.GetData().(type) {
	case *metricspb.Metric_Gauge:
		return len(data.Gauge.GetDataPoints())
	case *metricspb.Metric_Sum:
		return len(data.Sum.GetDataPoints())
	case *metricspb.Metric_Histogram:
		return len(data.Histogram.GetDataPoints())
	case *metricspb.Metric_ExponentialHistogram:
		return len(data.ExponentialHistogram.GetDataPoints())
	case *metricspb.Metric_Summary:
		return len(data.Summary.GetDataPoints())
	}
	return 0
}

// filter keeps the points that pass the bounds and valid (when not nil); why,
// when not empty, rejects every point of the metric.
func filter[P point](res *result, name, why string, pts []P, valid func(P) string, src func([]*commonpb.KeyValue) string) []P {
	var zero P
	return slices.DeleteFunc(pts, func(p P) bool {
		switch {
		case p == zero:
		case why != "":
			res.reject(&res.invalid, 1, quoteName(name)+": "+why)
		case res.accepted >= MaxRecords:
			res.reject(&res.tooMany, 1, "more than "+strconv.Itoa(MaxRecords)+" data points in the request")
		case len(p.GetAttributes()) > MaxAttributes:
			res.reject(&res.tooManyAtt, 1, quoteName(name)+": data point with more than "+strconv.Itoa(MaxAttributes)+" attributes")
		case p.GetTimeUnixNano() != 0 && p.GetStartTimeUnixNano() > p.GetTimeUnixNano():
			// The specification: start_time_unix_nano is the start of the
			// point's interval, time_unix_nano its end.
			res.invalid++
			res.reject(&res.startAfter, 1, quoteName(name)+": start_time_unix_nano after time_unix_nano")
		case src != nil && metric.UnsafeText(src(p.GetAttributes())):
			res.invalid++
			res.reject(&res.unsafe, 1, quoteName(name)+": source with a control, format or bidirectional-override character")
		default:
			if valid != nil {
				if w := valid(p); w != "" {
					res.reject(&res.invalid, 1, quoteName(name)+": "+w)
					return true
				}
			}
			res.accepted++
			return false
		}
		return true
	})
}

// quoteName quotes a metric name for an error message, cut to 64 bytes.
func quoteName(name string) string {
	return strconv.Quote(name[:min(len(name), 64)])
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func finitePtr(v *float64) bool { return v == nil || finite(*v) }

// validHistogram checks an explicit-bucket histogram point.
func validHistogram(p *metricspb.HistogramDataPoint) string {
	nb := len(p.BucketCounts)
	switch {
	case nb > MaxHistogramBuckets:
		return "more than " + strconv.Itoa(MaxHistogramBuckets) + " buckets"
	case nb > 0 && nb != len(p.ExplicitBounds)+1:
		return "bucket_counts must have one more entry than explicit_bounds"
	case nb <= 1 && p.Count > 0 && p.Sum == nil && (p.Min == nil || p.Max == nil):
		return "count without buckets, sum, or min and max"
	case !finitePtr(p.Sum) || !finitePtr(p.Min) || !finitePtr(p.Max):
		return "sum, min or max not finite"
	}
	for i, b := range p.ExplicitBounds {
		if !finite(b) || i > 0 && b <= p.ExplicitBounds[i-1] {
			return "explicit_bounds not finite and increasing"
		}
	}
	if nb == 0 {
		return ""
	}
	return addsUp(p.Count, 0, "bucket counts do not add up to count", p.BucketCounts)
}

// addsUp returns "" when zero plus the bucket counts add up to count, else
// why not: an overflow, or mismatch.
func addsUp(count, zero uint64, mismatch string, buckets ...[]uint64) string {
	n := zero
	for _, cs := range buckets {
		for _, c := range cs {
			n += c
			if n < c {
				return "bucket counts overflow"
			}
		}
	}
	if n != count {
		return mismatch
	}
	return ""
}

// Exponential histogram scales the specification allows.
const (
	minScale = -10
	maxScale = 20
)

// validExponential checks an exponential histogram point.
func validExponential(p *metricspb.ExponentialHistogramDataPoint) string {
	pos, neg := p.GetPositive().GetBucketCounts(), p.GetNegative().GetBucketCounts()
	switch {
	case p.Scale < minScale || p.Scale > maxScale:
		return "scale outside [-10, 20]"
	case len(pos)+len(neg) > MaxHistogramBuckets:
		return "more than " + strconv.Itoa(MaxHistogramBuckets) + " buckets"
	case !finitePtr(p.Sum) || !finitePtr(p.Min) || !finitePtr(p.Max):
		return "sum, min or max not finite"
	}
	return addsUp(p.Count, p.ZeroCount, "bucket and zero counts do not add up to count", pos, neg)
}

// processMetrics appends the measurements of the points of d to buf, handing
// them to the Sink every input.SinkBatch measurements, and returns buf.
func (r *Receiver) processMetrics(buf []metric.Measurement, d *metricspb.MetricsData, arrival time.Time, app string) []metric.Measurement {
	now := arrival.UnixNano()
	for _, rm := range d.GetResourceMetrics() {
		resAttrs := rm.GetResource().GetAttributes()
		resSource := r.source(resAttrs)
		resHash, resHashed := uint64(0), false
		key := func(name string, kind byte, attrs []*commonpb.KeyValue) uint64 {
			if !resHashed {
				resHash, resHashed = attrsHash(resAttrs), true
			}
			var h maphash.Hash
			h.SetSeed(hashSeed)
			h.WriteString(name)
			h.WriteByte(kind)
			return h.Sum64() ^ resHash*0x9E3779B97F4A7C15 ^ attrsHash(attrs)*0xC2B2AE3D27D4EB4F
		}
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				if m == nil {
					continue
				}
				unit := Unit(m.Unit)
				out := metric.Measurement{App: app, Name: m.Name, Unit: unit}
				emit := func(attrs []*commonpb.KeyValue, t uint64, kind metric.Kind, v float64, dist *metric.Distribution) {
					out.Source = r.sourceOf(attrs, resSource)
					out.Time = arrival
					if t != 0 {
						out.Time = unixNano(t)
					}
					out.Kind, out.Value, out.Dist = kind, v, dist
					buf = append(buf, out)
					if len(buf) >= input.SinkBatch {
						r.sink.Add(buf)
						clear(buf)
						buf = buf[:0]
					}
				}
				switch data := m.Data.(type) {
				case *metricspb.Metric_Gauge:
					for _, p := range data.Gauge.DataPoints {
						if v, ok := r.numberValue(p); ok {
							emit(p.Attributes, p.TimeUnixNano, metric.Sample, v, nil)
						}
					}
				case *metricspb.Metric_Sum:
					s := data.Sum
					cum := s.AggregationTemporality == temporalityCumulative
					for _, p := range s.DataPoints {
						v, ok := r.numberValue(p)
						if !ok {
							continue
						}
						switch {
						case s.IsMonotonic && cum:
							if inc, ok := r.cumulativeSum(key(m.Name, 's', p.Attributes), p, v, now); ok {
								emit(p.Attributes, p.TimeUnixNano, metric.Counter, inc, nil)
							}
						case cum: // an UpDownCounter's level
							emit(p.Attributes, p.TimeUnixNano, metric.Sample, v, nil)
						default: // delta: the count, or the change of a level
							emit(p.Attributes, p.TimeUnixNano, metric.Counter, v, nil)
						}
					}
				case *metricspb.Metric_Histogram:
					h := data.Histogram
					measures(r, m.Name, "otlp: histogram point whose values cannot be placed skipped", h.DataPoints,
						h.AggregationTemporality, func(p *metricspb.HistogramDataPoint) uint64 { return key(m.Name, 'h', p.Attributes) },
						histogramDelta, histogramDist, now, emit)
				case *metricspb.Metric_ExponentialHistogram:
					h := data.ExponentialHistogram
					measures(r, m.Name, "otlp: exponential histogram point out of float64 range skipped", h.DataPoints,
						h.AggregationTemporality, func(p *metricspb.ExponentialHistogramDataPoint) uint64 { return key(m.Name, 'e', p.Attributes) },
						exponentialDelta, exponentialDist, now, emit)
				}
			}
		}
	}
	return buf
}

// measures emits the distribution of each histogram point of either kind
// (a cumulative one's difference with the series' previous point); points
// without a value, or whose values cannot be placed (unplaceable says so in
// the log), are counted and skipped.
func measures[P histPoint](r *Receiver, name, unplaceable string, pts []P, t metricspb.AggregationTemporality,
	key func(P) uint64, delta func(prev, cur P) (P, bool), dist func(P, bool) *metric.Distribution, now int64,
	emit func([]*commonpb.KeyValue, uint64, metric.Kind, float64, *metric.Distribution)) {
	for _, p := range pts {
		if p.GetFlags()&noRecordedValue != 0 {
			r.noValue.Add(1)
			continue
		}
		exact := true
		if t == temporalityCumulative {
			if p, exact = cumulativeHist(r, key(p), p, now, delta); p == nil {
				continue
			}
		}
		if d := dist(p, exact); d != nil {
			emit(p.GetAttributes(), p.GetTimeUnixNano(), metric.Measure, d.Sum/float64(d.Count), d)
		} else if p.GetCount() > 0 {
			r.unplaceable.Add(1)
			r.warn(problemPoint, unplaceable, "metric", name)
		}
	}
}

// numberValue returns a number point's value; points without one, or
// flagged as having no recorded value, are counted and skipped.
func (r *Receiver) numberValue(p *metricspb.NumberDataPoint) (float64, bool) {
	if p.Flags&noRecordedValue != 0 {
		r.noValue.Add(1)
		return 0, false
	}
	switch v := p.Value.(type) {
	case *metricspb.NumberDataPoint_AsDouble:
		return v.AsDouble, true
	case *metricspb.NumberDataPoint_AsInt:
		return float64(v.AsInt), true
	}
	r.noValue.Add(1)
	return 0, false
}

// Unit maps an OTLP (UCUM) unit to the l2met-style unit the outlets know:
// By → bytes, kBy → kB, MBy → MB, GBy → GB, KiBy → KiB, MiBy → MiB, GiBy →
// GiB, 1 and annotations ({request}) → none; ms, s, %, and other units are
// kept as they are when 16 bytes or shorter, dropped when longer.
func Unit(u string) string {
	if l, ok := units[u]; ok {
		return l
	}
	if strings.HasPrefix(u, "{") && strings.HasSuffix(u, "}") || len(u) > l2met.MaxUnitLen {
		return ""
	}
	return u
}

// units are the UCUM units Unit renames.
var units = map[string]string{"": "", "1": "", "By": "bytes", "kBy": "kB", "MBy": "MB", "GBy": "GB", "KiBy": "KiB", "MiBy": "MiB", "GiBy": "GiB"}

// hashSeed seeds the cumulative series keys; per process, like the state.
var hashSeed = maphash.MakeSeed()

// attrsHash hashes a set of attributes independently of their order.
func attrsHash(attrs []*commonpb.KeyValue) uint64 {
	var sum uint64
	for _, kv := range attrs {
		var h maphash.Hash
		h.SetSeed(hashSeed)
		h.WriteString(kv.GetKey())
		h.WriteByte(0)
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			h.WriteByte('s')
			h.WriteString(v.StringValue)
		case *commonpb.AnyValue_IntValue:
			h.WriteByte('i')
			h.WriteString(strconv.FormatInt(v.IntValue, 10))
		case *commonpb.AnyValue_BoolValue:
			h.WriteByte('b')
			h.WriteString(strconv.FormatBool(v.BoolValue))
		case *commonpb.AnyValue_DoubleValue:
			h.WriteByte('d')
			h.WriteString(strconv.FormatUint(math.Float64bits(v.DoubleValue), 16))
		default:
			b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(kv.GetValue())
			h.WriteByte('o')
			_, _ = h.Write(b)
		}
		sum += h.Sum64()
	}
	return sum
}

// cumulative remembers the previous point of each cumulative series.
type cumulative struct {
	mu        sync.Mutex
	series    map[uint64]*prevPoint
	lastSweep int64
	max       int // MaxCumulativeSeries; tests lower it
}

type prevPoint struct {
	start, time uint64 // the point's start_time_unix_nano and time_unix_nano
	seen        int64  // arrival, unix nanoseconds
	value       float64
	hist        any // the last *HistogramDataPoint or *ExponentialHistogramDataPoint
}

// step is what a cumulative point means after the previous one.
type step uint8

const (
	stepSkip  step = iota // first reference, out of order, or no room: nothing to emit
	stepWhole             // the whole value is new: a series that began after the start, or a reset
	stepDelta             // the difference with the previous point
)

// lookup finds or adds the series' previous point (isNew: just added, empty)
// and decides the step for a point with the given start and time; it sweeps
// series unseen for CumulativeTTL first. The caller holds r.cum.mu, compares
// the values (a value that went down is a reset too) and stores the point in
// prev when the step is not stepSkip or the series is new. It returns a nil
// prev when MaxCumulativeSeries series are remembered already.
func (r *Receiver) lookup(key uint64, start, t uint64, now int64) (pp *prevPoint, st step, isNew bool) {
	c := &r.cum
	if now-c.lastSweep > int64(CumulativeTTL/4) {
		for k, pp := range c.series {
			if now-pp.seen > int64(CumulativeTTL) {
				delete(c.series, k)
			}
		}
		c.lastSweep = now
	}
	pp = c.series[key]
	if pp == nil {
		if len(c.series) >= c.max {
			r.cumDropped.Add(1)
			r.warn(problemCumulative, "otlp: MaxCumulativeSeries reached: points of new cumulative series skipped", "max", MaxCumulativeSeries)
			return nil, stepSkip, false
		}
		pp = &prevPoint{seen: now}
		c.series[key] = pp
		if start != 0 && start >= r.start {
			return pp, stepWhole, true
		}
		r.cumFirst.Add(1)
		return pp, stepSkip, true
	}
	pp.seen = now
	if t <= pp.time {
		r.cumOutOfOrder.Add(1)
		return pp, stepSkip, false
	}
	if start != 0 && pp.start != 0 && start != pp.start {
		r.cumResets.Add(1)
		return pp, stepWhole, false
	}
	return pp, stepDelta, false
}

// cumulativeSum returns the increase of a monotonic cumulative sum point.
func (r *Receiver) cumulativeSum(key uint64, p *metricspb.NumberDataPoint, v float64, now int64) (float64, bool) {
	r.cum.mu.Lock()
	defer r.cum.mu.Unlock()
	pp, st, first := r.lookup(key, p.StartTimeUnixNano, p.TimeUnixNano, now)
	if pp == nil {
		return 0, false
	}
	inc := v
	if st == stepDelta {
		if v >= pp.value {
			inc = v - pp.value
		} else {
			r.cumResets.Add(1) // went down: a restart without a new start time
		}
	}
	if st != stepSkip || first {
		pp.start, pp.time, pp.value = p.StartTimeUnixNano, p.TimeUnixNano, v
	}
	return inc, st != stepSkip
}

// histPoint is a histogram data point of either kind.
type histPoint interface {
	*metricspb.HistogramDataPoint | *metricspb.ExponentialHistogramDataPoint
	point
	GetCount() uint64
	GetFlags() uint32
}

// cumulativeHist returns the difference (by delta) between a cumulative
// histogram point and the series' previous one (exact false: min and max are
// the series' since its start, bounds only), the point itself when all of it
// is new (exact true), or nil.
func cumulativeHist[P histPoint](r *Receiver, key uint64, p P, now int64, delta func(prev, cur P) (P, bool)) (P, bool) {
	r.cum.mu.Lock()
	defer r.cum.mu.Unlock()
	pp, st, first := r.lookup(key, p.GetStartTimeUnixNano(), p.GetTimeUnixNano(), now)
	if pp == nil {
		return nil, false
	}
	var out P
	exact := true
	switch st {
	case stepWhole:
		out = p
	case stepDelta:
		prev, _ := pp.hist.(P)
		if out, exact = delta(prev, p); out == nil {
			r.cumResets.Add(1)
			out, exact = p, true
		}
	}
	if st != stepSkip || first {
		pp.start, pp.time, pp.hist = p.GetStartTimeUnixNano(), p.GetTimeUnixNano(), p
	}
	if out.GetCount() == 0 {
		return nil, false
	}
	return out, exact
}

// histogramDelta returns cur minus prev, or nil when they are not
// comparable or cur went down (a reset).
func histogramDelta(prev, cur *metricspb.HistogramDataPoint) (*metricspb.HistogramDataPoint, bool) {
	if prev == nil || cur.Count < prev.Count || len(prev.BucketCounts) != len(cur.BucketCounts) ||
		len(prev.ExplicitBounds) != len(cur.ExplicitBounds) {
		return nil, false
	}
	for i, b := range cur.ExplicitBounds {
		if prev.ExplicitBounds[i] != b {
			return nil, false
		}
	}
	d := &metricspb.HistogramDataPoint{
		Attributes: cur.Attributes, StartTimeUnixNano: prev.TimeUnixNano, TimeUnixNano: cur.TimeUnixNano,
		Count: cur.Count - prev.Count, ExplicitBounds: cur.ExplicitBounds, Min: cur.Min, Max: cur.Max,
		BucketCounts: make([]uint64, len(cur.BucketCounts)),
	}
	for i, c := range cur.BucketCounts {
		if c < prev.BucketCounts[i] {
			return nil, false
		}
		d.BucketCounts[i] = c - prev.BucketCounts[i]
	}
	if cur.Sum != nil && prev.Sum != nil {
		s := *cur.Sum - *prev.Sum
		d.Sum = &s
	}
	return d, false
}

// exponentialDelta returns cur minus prev, with prev's buckets mapped down to
// cur's scale (an SDK lowers the scale of a cumulative series as its range
// grows), or nil when cur went down or has a finer scale (a reset).
func exponentialDelta(prev, cur *metricspb.ExponentialHistogramDataPoint) (*metricspb.ExponentialHistogramDataPoint, bool) {
	if prev == nil || cur.Count < prev.Count || cur.ZeroCount < prev.ZeroCount || cur.Scale > prev.Scale {
		return nil, false
	}
	shift := uint(prev.Scale - cur.Scale)
	sub := func(pb, cb *metricspb.ExponentialHistogramDataPoint_Buckets) (*metricspb.ExponentialHistogramDataPoint_Buckets, bool) {
		counts := append([]uint64(nil), cb.GetBucketCounts()...)
		off := int64(cb.GetOffset())
		for i, c := range pb.GetBucketCounts() {
			if c == 0 {
				continue
			}
			idx := (int64(pb.GetOffset()) + int64(i)) >> shift
			j := idx - off
			if j < 0 || j >= int64(len(counts)) || counts[j] < c {
				return nil, false
			}
			counts[j] -= c
		}
		return &metricspb.ExponentialHistogramDataPoint_Buckets{Offset: cb.GetOffset(), BucketCounts: counts}, true
	}
	pos, ok1 := sub(prev.Positive, cur.Positive)
	neg, ok2 := sub(prev.Negative, cur.Negative)
	if !ok1 || !ok2 {
		return nil, false
	}
	d := &metricspb.ExponentialHistogramDataPoint{
		Attributes: cur.Attributes, StartTimeUnixNano: prev.TimeUnixNano, TimeUnixNano: cur.TimeUnixNano,
		Count: cur.Count - prev.Count, Scale: cur.Scale, ZeroCount: cur.ZeroCount - prev.ZeroCount,
		Positive: pos, Negative: neg, Min: cur.Min, Max: cur.Max,
	}
	if cur.Sum != nil && prev.Sum != nil {
		s := *cur.Sum - *prev.Sum
		d.Sum = &s
	}
	return d, false
}
