package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/librato/libratotest"
	collogspb "go.opentelemetry.io/proto/slim/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/slim/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/slim/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/slim/otlp/logs/v1"
	metricspb "go.opentelemetry.io/proto/slim/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/slim/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

const (
	firWebA = "web-5d8f7c9b4-x2k9p"
	firWebB = "web-6a7b8c9d0-q1w2e"
)

func kv(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// firResource is the resource of a Fir dyno's signals; dyno "" is a platform
// component (the router) without a dyno attribute.
func firResource(dyno string) *resourcepb.Resource {
	attrs := []*commonpb.KeyValue{kv("service.name", "my-app"), kv("cloud.provider", "heroku")}
	if dyno != "" {
		attrs = append(attrs, kv("heroku.dyno.name", dyno))
	}
	return &resourcepb.Resource{Attributes: attrs}
}

func firLogs(dyno string, at time.Time, bodies ...string) *logspb.ResourceLogs {
	var recs []*logspb.LogRecord
	for i, b := range bodies {
		recs = append(recs, &logspb.LogRecord{TimeUnixNano: uint64(at.Add(time.Duration(i) * time.Millisecond).UnixNano()),
			Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: b}}})
	}
	return &logspb.ResourceLogs{Resource: firResource(dyno), ScopeLogs: []*logspb.ScopeLogs{{LogRecords: recs}}}
}

// postOTLP posts m as gzip'd protobuf, or as JSON, and returns the status.
func postOTLP(t *testing.T, url, user, pass string, m proto.Message, asJSON bool) int {
	t.Helper()
	var body []byte
	var err error
	ctype := "application/x-protobuf"
	if asJSON {
		ctype = "application/json"
		body, err = protojson.Marshal(m)
	} else {
		body, err = proto.Marshal(m)
	}
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(body)
	zw.Close()
	req, _ := http.NewRequest(http.MethodPost, url, &buf)
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestEndToEndFir runs the built worker binary as a Fir telemetry drain's
// endpoint (OTLP_SOURCE_ATTRIBUTES=heroku.dyno.name): l2met and router log
// records from two Fir dynos plus a gauge and a delta sum, over OTLP/HTTP
// with gzip, protobuf and JSON, reach the fake Librato with their names,
// sources and values.
func TestEndToEndFir(t *testing.T) {
	fake := libratotest.New(t, libratotest.Options{User: testLUser, Token: testLToken})
	p := startBinary(t, buildBinary(t, "."),
		"OTLP_SOURCE_ATTRIBUTES=heroku.dyno.name", "METRICS_PREFIX="+testPrefix, "METRICS_GRACE=30m",
		"LIBRATO_USER="+testLUser, "LIBRATO_TOKEN="+testLToken, "LIBRATO_URL="+fake.URL)
	base := strings.TrimSuffix(p.url, "/logs")

	start := time.Now().UTC().Truncate(time.Minute)
	at := start.Add(time.Second)
	logs := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{
		firLogs(firWebA, at, "count#http.requests=3 measure#db.latency=4ms", "Listening on port 5000"),
		firLogs(firWebB, at, "count#http.requests=2 measure#db.latency=10ms"),
		firLogs("", at,
			`at=info method=GET path="/" host=my-app.example.com request_id=6903a168 fwd=138.68.186.89 dyno=`+firWebA+` connect=1ms service=20ms status=200 bytes=100 protocol=http2.0 tls=true tls_version=tls1.3`,
			`at=error code=H12 desc="Request timeout" method=POST path="/slow" host=my-app.example.com request_id=7a1b fwd=138.68.186.89 dyno=`+firWebB+` connect=0ms service=30000ms status=503 bytes=0 protocol=http1.1 tls=true tls_version=tls1.2`),
	}}
	if code := postOTLP(t, base+"/v1/logs", testUser, "wrong", logs, false); code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", code)
	}
	if code := postOTLP(t, base+"/v1/logs", testUser, testPass, logs, false); code != http.StatusOK {
		t.Fatalf("logs: %d", code)
	}
	ts := uint64(at.UnixNano())
	metrics := &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{
		{Resource: firResource(firWebA), ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{{
			Name: "dyno.memory.rss", Unit: "By", Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{
				{TimeUnixNano: ts, Value: &metricspb.NumberDataPoint_AsInt{AsInt: 52428800}}}}},
		}}}}},
		{Resource: firResource(firWebB), ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{{
			Name: "app.jobs", Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA,
				IsMonotonic: true, DataPoints: []*metricspb.NumberDataPoint{
					{StartTimeUnixNano: ts - 1e9, TimeUnixNano: ts, Value: &metricspb.NumberDataPoint_AsInt{AsInt: 5}}}}},
		}}}}},
	}}
	if code := postOTLP(t, base+"/v1/metrics", testUser, testPass, metrics, true); code != http.StatusOK {
		t.Fatalf("metrics: %d", code)
	}
	p.term(t)

	var wants []want
	wants = append(wants, measure("db.latency", firWebA, 1, 4, 4, 4, 16, 4, 4, 4, "ms")...)
	wants = append(wants, measure("db.latency", firWebB, 1, 10, 10, 10, 100, 10, 10, 10, "ms")...)
	wants = append(wants, measure("router.connect", firWebA, 1, 1, 1, 1, 1, 1, 1, 1, "ms")...)
	wants = append(wants, measure("router.service", firWebA, 1, 20, 20, 20, 400, 20, 20, 20, "ms")...)
	wants = append(wants, measure("router.bytes", firWebA, 1, 100, 100, 100, 10000, 100, 100, 100, "bytes")...)
	wants = append(wants, measure("router.connect", firWebB, 1, 0, 0, 0, 0, 0, 0, 0, "ms")...)
	wants = append(wants, measure("router.service", firWebB, 1, 30000, 30000, 30000, 9e8, 30000, 30000, 30000, "ms")...)
	wants = append(wants, measure("router.bytes", firWebB, 1, 0, 0, 0, 0, 0, 0, 0, "bytes")...)
	wants = append(wants,
		gauge("http.requests", firWebA, 3, ""),
		gauge("http.requests", firWebB, 2, ""),
		gauge("router.status.2xx", firWebA, 1, ""),
		gauge("router.protocol.http2.0", firWebA, 1, ""),
		gauge("router.error.H12", firWebB, 1, ""),
		gauge("router.status.5xx", firWebB, 1, ""),
		gauge("router.protocol.http1.1", firWebB, 1, ""),
		gauge("dyno.memory.rss", firWebA, 52428800, "bytes"),
		gauge("app.jobs", firWebB, 5, ""),
	)
	checkAccepted(t, fake.Measurements(), wants, start)
	if errs := fake.Errors(); len(errs) > 0 {
		t.Errorf("the fake refused requests: %q", errs)
	}
	if strings.Contains(p.stderr.String(), testPass) || strings.Contains(p.stderr.String(), testLToken) {
		t.Errorf("worker logs contain a secret:\n%s", p.stderr.String())
	}
}
