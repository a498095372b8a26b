package otlp

import (
	"strings"
	"testing"

	colmetricspb "go.opentelemetry.io/proto/slim/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/slim/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/slim/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/slim/otlp/resource/v1"
)

func deltaSum(name string, monotonic bool, start, t float64, v float64, attrs ...*commonpb.KeyValue) *metricspb.Metric {
	return &metricspb.Metric{Name: name, Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
		AggregationTemporality: temporalityDelta, IsMonotonic: monotonic,
		DataPoints: []*metricspb.NumberDataPoint{{StartTimeUnixNano: ns(start), TimeUnixNano: ns(t),
			Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: v}, Attributes: attrs}},
	}}}
}

// TestSpecificationChecks: a negative value on a monotonic delta sum, a
// start time after the point's time, and a name or source with control,
// format or bidirectional-override characters are rejected in
// partial_success and counted; the good points beside them are kept.
func TestSpecificationChecks(t *testing.T) {
	for name, tc := range map[string]struct {
		m      *metricspb.Metric
		reason string
		want   Stats
	}{
		"negative monotonic delta": {deltaSum("req", true, -10, 0, -5), "negative value on a monotonic delta sum",
			Stats{Rejected: 1, Invalid: 1, Negative: 1}},
		"negative int monotonic delta": {&metricspb.Metric{Name: "req", Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
			AggregationTemporality: temporalityDelta, IsMonotonic: true,
			DataPoints: []*metricspb.NumberDataPoint{{TimeUnixNano: ns(0), Value: &metricspb.NumberDataPoint_AsInt{AsInt: -1}}},
		}}}, "negative value", Stats{Rejected: 1, Invalid: 1, Negative: 1}},
		"start after time": {deltaSum("req", true, 5, 0, 1), "start_time_unix_nano after time_unix_nano",
			Stats{Rejected: 1, Invalid: 1, StartAfter: 1}},
		"right-to-left override in the name": {deltaSum("abc\u202egnp.exe", true, -10, 0, 1), "bidirectional",
			Stats{Rejected: 1, Invalid: 1, Unsafe: 1}},
		"newline in the name": {deltaSum("a\nb", false, -10, 0, 1), "control",
			Stats{Rejected: 1, Invalid: 1, Unsafe: 1}},
		"isolate in the source": {deltaSum("req", true, -10, 0, 1, str("heroku.dyno.name", "web.1\u2067")), "source with",
			Stats{Rejected: 1, Invalid: 1, Unsafe: 1}},
		"negative on a non-monotonic delta is fine": {deltaSum("req", false, -10, 0, -5), "", Stats{DataPoints: 1}},
	} {
		t.Run(name, func(t *testing.T) {
			r, c := newTestReceiver(t, nil)
			good := deltaSum("good", true, -10, 0, 3)
			w := post(r, MetricsPath, "application/x-protobuf", "", marshal(t, metricsRequest(tc.m, good)))
			var resp colmetricspb.ExportMetricsServiceResponse
			if err := unmarshalAs(w, &resp); err != nil || w.Code != 200 {
				t.Fatalf("%d %v", w.Code, err)
			}
			if got := resp.GetPartialSuccess().GetErrorMessage(); !strings.Contains(got, tc.reason) {
				t.Errorf("partial_success %q, want it to say %q", got, tc.reason)
			}
			waitQueued(t, r)
			st := r.Stats()
			tc.want.DataPoints++ // the good point
			got := Stats{Rejected: st.Rejected, Invalid: st.Invalid, Negative: st.Negative, StartAfter: st.StartAfter,
				Unsafe: st.Unsafe, DataPoints: st.DataPoints}
			if got != tc.want {
				t.Errorf("stats %+v, want %+v", got, tc.want)
			}
			found := false
			for _, m := range c.all() {
				found = found || m.Name == "good" && m.Value == 3
			}
			if !found {
				t.Errorf("the good point beside it was not kept: %v", c.all())
			}
		})
	}
}

// TestUnsafeResourceSource: a resource whose source attribute holds a
// bidirectional override rejects its points.
func TestUnsafeResourceSource(t *testing.T) {
	r, _ := newTestReceiver(t, nil)
	req := &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource:     &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("heroku.dyno.name", "web\u202e1.bew")}},
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{deltaSum("req", true, -10, 0, 1)}}},
	}}}
	post(r, MetricsPath, "application/x-protobuf", "", marshal(t, req))
	if st := r.Stats(); st.Unsafe != 1 || st.DataPoints != 0 {
		t.Errorf("Unsafe %d, DataPoints %d; want 1 and 0", st.Unsafe, st.DataPoints)
	}
}
