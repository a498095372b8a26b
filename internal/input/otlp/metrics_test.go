package otlp

import (
	"sync"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/metric"
	colmetricspb "go.opentelemetry.io/proto/slim/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/slim/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/slim/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/slim/otlp/resource/v1"
)

func ns(sec float64) uint64 {
	return uint64(testNow.Add(time.Duration(sec * float64(time.Second))).UnixNano())
}

func metricsRequest(ms ...*metricspb.Metric) *colmetricspb.ExportMetricsServiceRequest {
	return &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource:     &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("heroku.dyno.name", "web-5d8f7c9b4-x2k9p")}},
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: ms}},
	}}}
}

func cumSum(start, t float64, v int64) *metricspb.Metric {
	return &metricspb.Metric{Name: "requests", Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
		AggregationTemporality: temporalityCumulative, IsMonotonic: true,
		DataPoints: []*metricspb.NumberDataPoint{{StartTimeUnixNano: ns(start), TimeUnixNano: ns(t), Value: &metricspb.NumberDataPoint_AsInt{AsInt: v}}},
	}}}
}

// TestCumulativeSum follows one cumulative counter through the cases the
// data model names: a series older than the receiver (first point is the
// reference), increases, a duplicate and an older point, a reset by a new
// start time, a reset by a value going down.
func TestCumulativeSum(t *testing.T) {
	steps := []struct {
		name     string
		m        *metricspb.Metric
		want     []float64 // increases emitted
		counters Stats
	}{
		{"first point of an older series: reference", cumSum(-100, 0, 50), nil, Stats{CumulativeFirst: 1}},
		{"increase", cumSum(-100, 10, 65), []float64{15}, Stats{CumulativeFirst: 1}},
		{"same time again: skipped", cumSum(-100, 10, 65), nil, Stats{CumulativeFirst: 1, CumulativeOutOfOrder: 1}},
		{"older point: skipped", cumSum(-100, 5, 60), nil, Stats{CumulativeFirst: 1, CumulativeOutOfOrder: 2}},
		{"no change", cumSum(-100, 20, 65), []float64{0}, Stats{CumulativeFirst: 1, CumulativeOutOfOrder: 2}},
		{"new start time: reset, all of it new", cumSum(25, 30, 4), []float64{4}, Stats{CumulativeFirst: 1, CumulativeOutOfOrder: 2, CumulativeResets: 1}},
		{"value went down, same start: reset", cumSum(25, 40, 1), []float64{1}, Stats{CumulativeFirst: 1, CumulativeOutOfOrder: 2, CumulativeResets: 2}},
		{"increase after reset", cumSum(25, 50, 11), []float64{10}, Stats{CumulativeFirst: 1, CumulativeOutOfOrder: 2, CumulativeResets: 2}},
	}
	r, c := newTestReceiver(t, nil)
	seen := 0
	for _, s := range steps {
		if w := post(r, MetricsPath, "application/x-protobuf", "", marshal(t, metricsRequest(s.m))); w.Code != 200 {
			t.Fatalf("%s: status %d", s.name, w.Code)
		}
		waitQueued(t, r)
		all := c.all()
		var got []float64
		for _, m := range all[seen:] {
			if m.Kind != metric.Counter || m.Source != "web-5d8f7c9b4-x2k9p" || m.Name != "requests" {
				t.Errorf("%s: measurement %+v", s.name, m)
			}
			got = append(got, m.Value)
		}
		seen = len(all)
		if len(got) != len(s.want) || len(got) > 0 && got[0] != s.want[0] {
			t.Errorf("%s: emitted %v, want %v", s.name, got, s.want)
		}
		st := r.Stats()
		if st.CumulativeFirst != s.counters.CumulativeFirst || st.CumulativeOutOfOrder != s.counters.CumulativeOutOfOrder ||
			st.CumulativeResets != s.counters.CumulativeResets || st.CumulativeSeries != 1 {
			t.Errorf("%s: stats %+v", s.name, st)
		}
	}

	// A series that started after the receiver: its first point counts whole.
	r2, c2 := newTestReceiver(t, nil)
	post(r2, MetricsPath, "application/x-protobuf", "", marshal(t, metricsRequest(cumSum(1, 5, 7))))
	_ = r2.Close(t.Context())
	if ms := c2.all(); len(ms) != 1 || ms[0].Value != 7 {
		t.Errorf("new series: %+v", ms)
	}
}

// waitQueued waits until the receiver has processed everything queued.
func waitQueued(t *testing.T, r *Receiver) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.Stats().QueuedBytes != 0 {
		if time.Now().After(deadline) {
			t.Fatal("queue not drained")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCumulativeHistograms turns cumulative explicit and exponential
// histograms into per-interval distributions, including an exponential
// series whose scale drops between points.
func TestCumulativeHistograms(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	hist := func(t, count float64, sum float64, counts ...uint64) *metricspb.Metric {
		return &metricspb.Metric{Name: "latency", Unit: "ms", Data: &metricspb.Metric_Histogram{Histogram: &metricspb.Histogram{
			AggregationTemporality: temporalityCumulative,
			DataPoints: []*metricspb.HistogramDataPoint{{StartTimeUnixNano: ns(1), TimeUnixNano: ns(t), Count: uint64(count), Sum: f(sum),
				Min: f(1), Max: f(300), BucketCounts: counts, ExplicitBounds: []float64{10, 100}}},
		}}}
	}
	exp := func(t float64, scale int32, offset int32, counts ...uint64) *metricspb.Metric {
		var n uint64
		for _, c := range counts {
			n += c
		}
		return &metricspb.Metric{Name: "wait", Unit: "s", Data: &metricspb.Metric_ExponentialHistogram{ExponentialHistogram: &metricspb.ExponentialHistogram{
			AggregationTemporality: temporalityCumulative,
			DataPoints: []*metricspb.ExponentialHistogramDataPoint{{StartTimeUnixNano: ns(1), TimeUnixNano: ns(t), Count: n, Scale: scale,
				Positive: &metricspb.ExponentialHistogramDataPoint_Buckets{Offset: offset, BucketCounts: counts}}},
		}}}
	}
	// wait: scale 1 buckets (1,√2] and (√2,2] at their geometric middles;
	// then scale 0, where the previous two buckets both fall in (1,2]: the
	// difference is 1 in (1,2] and 2 in (2,4]. latency: the second point adds
	// one value in (10,100] and one in (100,300].
	r, c := newTestReceiver(t, nil)
	for _, req := range []*colmetricspb.ExportMetricsServiceRequest{
		metricsRequest(hist(2, 3, 60, 1, 2, 0), exp(2, 1, 0, 1, 1)),  // started after the receiver: whole
		metricsRequest(hist(4, 5, 460, 1, 3, 1), exp(4, 0, 0, 3, 2)), // +1 in (10,100], +1 in (100,∞); scale 1 → 0
	} {
		if w := post(r, MetricsPath, "application/x-protobuf", "", marshal(t, req)); w.Code != 200 {
			t.Fatalf("status %d %s", w.Code, w.Body)
		}
		waitQueued(t, r)
	}
	got := describe(c.all())
	want := "" +
		"2024-05-01T12:00:12Z measure latency source=\"web-5d8f7c9b4-x2k9p\" value=20 unit=\"ms\" dist=count:3,sum:60,min:1,max:300,bins:5.5×1,55×2\n" +
		"2024-05-01T12:00:12Z measure wait source=\"web-5d8f7c9b4-x2k9p\" value=1.435499972755075 unit=\"s\" dist=count:2,sum:2.870999946,min:1,max:2,bins:1.189207115×1,1.681792831×1\n" +
		"2024-05-01T12:00:14Z measure latency source=\"web-5d8f7c9b4-x2k9p\" value=200 unit=\"ms\" dist=count:2,sum:400,min:10,max:300,bins:55×1,200×1\n" +
		"2024-05-01T12:00:14Z measure wait source=\"web-5d8f7c9b4-x2k9p\" value=2.3570226039551585 unit=\"s\" dist=count:3,sum:7.071067812,min:1,max:4,bins:1.414213562×1,2.828427125×2\n"
	if got != want {
		t.Errorf("got\n%swant\n%s", got, want)
	}
}

func TestProcessType(t *testing.T) {
	for in, want := range map[string]string{
		"web-5d8f7c9b4-x2k9p": "web", "worker-7f6e5d4c3-ab12c": "worker", "web_api-1a-zz9zz": "web_api",
		"web.1": "web.1", "router": "router", "DATABASE": "DATABASE", "web-5d8f7c9b4-X2K9P": "web-5d8f7c9b4-X2K9P",
		"web-5d8f7c9b4-x2k9": "web-5d8f7c9b4-x2k9", "-abc-x2k9p": "-abc-x2k9p", "web--x2k9p": "web--x2k9p", "": "",
	} {
		if got := ProcessType(in); got != want {
			t.Errorf("ProcessType(%q) = %q, want %q", in, got, want)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = ProcessType("web-5d8f7c9b4-x2k9p") }); allocs != 0 {
		t.Errorf("%v allocations", allocs)
	}
}

// TestDynoType: with DynoType every source that is a Fir dyno name becomes
// its process type, in log and metric measurements alike.
func TestDynoType(t *testing.T) {
	r, c := newTestReceiver(t, func(cfg *Config) { cfg.DynoNames = DynoType })
	post(r, LogsPath, "application/x-protobuf", "", marshal(t, logsRequest("web-5d8f7c9b4-x2k9p", testNow, "count#a=1",
		"at=info method=GET path=\"/\" host=h fwd=1.2.3.4 dyno=web-6a7b8c9d0-q1w2e connect=0ms service=1ms status=200 bytes=1 protocol=http2.0")))
	post(r, MetricsPath, "application/x-protobuf", "", marshal(t, metricsRequest(&metricspb.Metric{Name: "g", Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{
		DataPoints: []*metricspb.NumberDataPoint{{TimeUnixNano: ns(0), Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: 1.5}}}}}})))
	_ = r.Close(t.Context())
	ms := c.all()
	if len(ms) != 7 {
		t.Fatalf("%d measurements: %s", len(ms), describe(ms))
	}
	for _, m := range ms {
		if m.Source != "web" {
			t.Errorf("source %q in %+v", m.Source, m)
		}
	}
}

func TestUnit(t *testing.T) {
	for in, want := range map[string]string{"By": "bytes", "MiBy": "MiB", "kBy": "kB", "1": "", "{request}": "", "ms": "ms", "s": "s",
		"%": "%", "By/s": "By/s", "averyveryverylongunit": ""} {
		if got := Unit(in); got != want {
			t.Errorf("Unit(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseDynoNames(t *testing.T) {
	for in, want := range map[string]DynoNames{"full": DynoFull, "type": DynoType} {
		if got, err := ParseDynoNames(in); err != nil || got != want || got.String() != in {
			t.Errorf("ParseDynoNames(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseDynoNames("web"); err == nil {
		t.Error("web accepted")
	}
}

// TestUnplaceable: a point the checks let through but whose buckets lie
// beyond float64 is counted and skipped; a histogram with nothing to place
// its values by is rejected in partial_success.
func TestUnplaceable(t *testing.T) {
	r, c := newTestReceiver(t, nil)
	huge := &metricspb.Metric{Name: "huge", Data: &metricspb.Metric_ExponentialHistogram{ExponentialHistogram: &metricspb.ExponentialHistogram{
		AggregationTemporality: temporalityDelta,
		DataPoints: []*metricspb.ExponentialHistogramDataPoint{{TimeUnixNano: ns(0), Count: 1, Scale: -10,
			Positive: &metricspb.ExponentialHistogramDataPoint_Buckets{Offset: 3, BucketCounts: []uint64{1}}}},
	}}}
	blind := &metricspb.Metric{Name: "blind", Data: &metricspb.Metric_Histogram{Histogram: &metricspb.Histogram{
		AggregationTemporality: temporalityDelta,
		DataPoints:             []*metricspb.HistogramDataPoint{{TimeUnixNano: ns(0), Count: 2, BucketCounts: []uint64{2}}},
	}}}
	w := post(r, MetricsPath, "application/x-protobuf", "", marshal(t, metricsRequest(huge, blind)))
	var resp colmetricspb.ExportMetricsServiceResponse
	if err := unmarshalAs(w, &resp); err != nil || resp.GetPartialSuccess().GetRejectedDataPoints() != 1 {
		t.Fatalf("status %d, %v, %v", w.Code, err, resp.GetPartialSuccess())
	}
	_ = r.Close(t.Context())
	if st := r.Stats(); st.Unplaceable != 1 || st.Invalid != 1 || len(c.all()) != 0 {
		t.Errorf("stats %+v, measurements %v", st, c.all())
	}
}

// TestCumulativeBounds: series unseen for CumulativeTTL are forgotten (their
// next point is a first point again) and no more than the bound are kept.
func TestCumulativeBounds(t *testing.T) {
	var mu sync.Mutex
	now := testNow
	r, c := newTestReceiver(t, func(cfg *Config) {
		cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	r.cum.max = 2
	series := func(name string, tsec float64, v int64) *metricspb.Metric {
		m := cumSum(-100, tsec, v)
		m.Name = name
		return m
	}
	send := func(ms ...*metricspb.Metric) {
		t.Helper()
		if w := post(r, MetricsPath, "application/x-protobuf", "", marshal(t, metricsRequest(ms...))); w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
		waitQueued(t, r)
	}
	send(series("a", 0, 1), series("b", 0, 1), series("c", 0, 1)) // c: no room
	if st := r.Stats(); st.CumulativeSeries != 2 || st.CumulativeSeriesDropped != 1 || st.CumulativeFirst != 2 {
		t.Fatalf("stats %+v", st)
	}
	mu.Lock()
	now = now.Add(CumulativeTTL + time.Minute)
	mu.Unlock()
	send(series("a", 10, 5)) // sweeps a and b, then a is new again
	if st := r.Stats(); st.CumulativeSeries != 1 || st.CumulativeFirst != 3 {
		t.Fatalf("after the TTL: stats %+v", st)
	}
	send(series("a", 20, 8))
	if ms := c.all(); len(ms) != 1 || ms[0].Value != 3 {
		t.Errorf("measurements %s", describe(ms))
	}
}
