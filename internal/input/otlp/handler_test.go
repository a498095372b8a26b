package otlp

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/metric"
	collogspb "go.opentelemetry.io/proto/slim/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/slim/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/slim/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/slim/otlp/logs/v1"
	metricspb "go.opentelemetry.io/proto/slim/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/slim/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	_ "google.golang.org/protobuf/types/known/anypb" // registers google/protobuf/any.proto for rpcStatus
)

// rpcStatus returns an empty google.rpc.Status built from its schema
// (google/rpc/status.proto: code 1, message 2, repeated Any details 3), so
// that the protobuf runtime decodes error bodies without genproto in the
// module graph.
func rpcStatus(t *testing.T) *dynamicpb.Message {
	t.Helper()
	field := func(name string, n int32, typ descriptorpb.FieldDescriptorProto_Type, label descriptorpb.FieldDescriptorProto_Label, msg string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(n), Type: typ.Enum(), Label: label.Enum(), JsonName: proto.String(name)}
		if msg != "" {
			f.TypeName = proto.String(msg)
		}
		return f
	}
	opt, rep := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL, descriptorpb.FieldDescriptorProto_LABEL_REPEATED
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name: proto.String("google/rpc/status.proto"), Package: proto.String("google.rpc"), Syntax: proto.String("proto3"),
		Dependency: []string{"google/protobuf/any.proto"},
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("Status"), Field: []*descriptorpb.FieldDescriptorProto{
			field("code", 1, descriptorpb.FieldDescriptorProto_TYPE_INT32, opt, ""),
			field("message", 2, descriptorpb.FieldDescriptorProto_TYPE_STRING, opt, ""),
			field("details", 3, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, rep, ".google.protobuf.Any"),
		}}},
	}, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	return dynamicpb.NewMessage(fd.Messages().ByName("Status"))
}

// statusField reads one field of a message made by rpcStatus.
func statusField(m *dynamicpb.Message, name protoreflect.Name) protoreflect.Value {
	return m.Get(m.Descriptor().Fields().ByName(name))
}

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// logsRequest builds a canonical ExportLogsServiceRequest with one record per
// body, from dyno on the resource.
func logsRequest(dyno string, t time.Time, bodies ...string) *collogspb.ExportLogsServiceRequest {
	var recs []*logspb.LogRecord
	for _, b := range bodies {
		recs = append(recs, &logspb.LogRecord{TimeUnixNano: uint64(t.UnixNano()),
			Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: b}}})
	}
	return &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource:  &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("heroku.dyno.name", dyno)}},
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: recs}},
	}}}
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAnswers checks every answer the OTLP/HTTP specification asks for, with
// the canonical response and status types decoding the bodies.
func TestAnswers(t *testing.T) {
	good := marshal(t, logsRequest("web-5d8f7c9b4-x2k9p", testNow, "count#req=1"))
	deep := func() []byte {
		v := &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "x"}}
		for range MaxNesting {
			v = &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{v}}}}
		}
		req := logsRequest("web", testNow, "count#req=1")
		req.ResourceLogs[0].ScopeLogs[0].LogRecords[0].Attributes = []*commonpb.KeyValue{{Key: "deep", Value: v}}
		return marshal(t, req)
	}()
	bomb := gz(t, make([]byte, MaxDecodedBytes+1))
	deepJSON := []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":` + strings.Repeat(`{"arrayValue":{"values":[`, MaxNesting) +
		`{"stringValue":"x"}` + strings.Repeat(`]}}`, MaxNesting) + `}]}]}]}`)
	tests := map[string]struct {
		method, path, ctype, enc, auth string
		body                           []byte
		status                         int
		msg                            string // in the google.rpc.Status or partial_success message
		counter                        func(Stats) uint64
	}{
		"protobuf":                 {path: LogsPath, ctype: "application/x-protobuf", body: good, status: 200},
		"protobuf gzip":            {path: LogsPath, ctype: "application/x-protobuf", enc: "gzip", body: gz(t, good), status: 200},
		"json with charset":        {path: LogsPath, ctype: "application/json; charset=utf-8", body: []byte(`{"resourceLogs":[]}`), status: 200},
		"json unknown field":       {path: LogsPath, ctype: "application/json", body: []byte(`{"resourceLogs":[],"future":1}`), status: 200},
		"wrong password":           {path: LogsPath, ctype: "application/x-protobuf", auth: basicAuth(testUser, "nope"), body: good, status: 401, msg: "credentials"},
		"no credentials":           {path: MetricsPath, ctype: "application/x-protobuf", auth: "-", body: good, status: 401, msg: "credentials"},
		"GET":                      {method: http.MethodGet, path: LogsPath, status: 405},
		"text/plain":               {path: LogsPath, ctype: "text/plain", body: good, status: 415, msg: "Content-Type"},
		"brotli":                   {path: LogsPath, ctype: "application/x-protobuf", enc: "br", body: good, status: 415, msg: "Content-Encoding"},
		"too large":                {path: LogsPath, ctype: "application/x-protobuf", body: make([]byte, MaxBodyBytes+1), status: 413, msg: "exceeds", counter: func(s Stats) uint64 { return s.TooLarge }},
		"gzip bomb":                {path: LogsPath, ctype: "application/x-protobuf", enc: "gzip", body: bomb, status: 413, msg: "decompressed body exceeds", counter: func(s Stats) uint64 { return s.GzipBombs }},
		"corrupt gzip":             {path: LogsPath, ctype: "application/x-protobuf", enc: "gzip", body: good, status: 400, msg: "gzip"},
		"not protobuf":             {path: MetricsPath, ctype: "application/x-protobuf", body: []byte{0xff, 0xff, 0xff}, status: 400},
		"not json":                 {path: MetricsPath, ctype: "application/json", body: []byte(`{"resourceMetrics":[{`), status: 400},
		"wrong json type":          {path: LogsPath, ctype: "application/json", body: []byte(`{"resourceLogs":"x"}`), status: 400},
		"nested deeper than bound": {path: LogsPath, ctype: "application/x-protobuf", body: deep, status: 400, counter: func(s Stats) uint64 { return s.TooDeep }},
		"json nested deeper":       {path: LogsPath, ctype: "application/json", body: deepJSON, status: 400, counter: func(s Stats) uint64 { return s.TooDeep }},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r, _ := newTestReceiver(t, nil)
			if tt.method == "" {
				tt.method = http.MethodPost
			}
			req := httptest.NewRequest(tt.method, tt.path, bytes.NewReader(tt.body))
			switch tt.auth {
			case "":
				req.Header.Set("Authorization", basicAuth(testUser, testPass))
			case "-":
			default:
				req.Header.Set("Authorization", tt.auth)
			}
			req.Header.Set("Content-Type", tt.ctype)
			req.Header.Set("Content-Encoding", tt.enc)
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d (body %q)", w.Code, tt.status, w.Body.String())
			}
			if w.Code == 405 {
				return
			}
			if strings.Contains(w.Body.String(), testPass) {
				t.Fatal("the answer carries the password")
			}
			if w.Code == 200 {
				var resp collogspb.ExportLogsServiceResponse
				if err := unmarshalAs(w, &resp); err != nil {
					t.Fatalf("response does not decode as ExportLogsServiceResponse: %v", err)
				}
				if resp.PartialSuccess != nil {
					t.Fatalf("unexpected partial success %v", resp.PartialSuccess)
				}
				return
			}
			st := rpcStatus(t)
			if err := unmarshalAs(w, st); err != nil {
				t.Fatalf("error body does not decode as google.rpc.Status: %v (%q)", err, w.Body.String())
			}
			if !strings.Contains(statusField(st, "message").String(), tt.msg) || statusField(st, "code").Int() == 0 {
				t.Errorf("status %v, want a code and a message with %q", st, tt.msg)
			}
			if tt.status == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tt.counter != nil {
				if n := tt.counter(r.Stats()); n != 1 {
					t.Errorf("counter %d, want 1 (stats %+v)", n, r.Stats())
				}
			}
		})
	}
}

func unmarshalAs(w *httptest.ResponseRecorder, m proto.Message) error {
	if w.Header().Get("Content-Type") == "application/json" {
		return protojson.Unmarshal(w.Body.Bytes(), m)
	}
	return proto.Unmarshal(w.Body.Bytes(), m)
}

// TestPartialSuccess: records past the bounds are rejected and reported with
// the canonical response types, while the good ones of the same request are
// kept.
func TestPartialSuccess(t *testing.T) {
	r, c := newTestReceiver(t, nil)
	bodies := make([]string, MaxRecords+3)
	for i := range bodies {
		bodies[i] = "count#req=1"
	}
	req := logsRequest("web-5d8f7c9b4-x2k9p", testNow, bodies...)
	many := make([]*commonpb.KeyValue, MaxAttributes+1)
	for i := range many {
		many[i] = str("k"+strings.Repeat("x", i%7), "v")
	}
	req.ResourceLogs[0].ScopeLogs[0].LogRecords[0].Attributes = many
	w := post(r, LogsPath, "application/x-protobuf", "gzip", gz(t, marshal(t, req)))
	var resp collogspb.ExportLogsServiceResponse
	if err := unmarshalAs(w, &resp); err != nil || w.Code != 200 {
		t.Fatalf("status %d, %v", w.Code, err)
	}
	if got := resp.GetPartialSuccess().GetRejectedLogRecords(); got != 3 {
		t.Errorf("rejected %d, want 3 (1 over MaxAttributes, 2 past MaxRecords)", got)
	}
	if !strings.Contains(resp.GetPartialSuccess().GetErrorMessage(), "attributes") {
		t.Errorf("message %q", resp.GetPartialSuccess().GetErrorMessage())
	}
	if err := r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, m := range c.all() {
		n += m.Value
	}
	if n != MaxRecords {
		t.Errorf("%v requests counted, want %d", n, MaxRecords)
	}
	if st := r.Stats(); st.TooMany != 2 || st.TooManyAtt != 1 || st.Rejected != 3 || st.LogRecords != MaxRecords {
		t.Errorf("stats %+v", st)
	}

	// JSON: the metrics answer names rejected data points.
	mreq := &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{ScopeMetrics: []*metricspb.ScopeMetrics{{
		Metrics: []*metricspb.Metric{{Name: "h", Data: &metricspb.Metric_Histogram{Histogram: &metricspb.Histogram{
			AggregationTemporality: temporalityDelta,
			DataPoints:             []*metricspb.HistogramDataPoint{{TimeUnixNano: 1, Count: 3, BucketCounts: []uint64{1, 1}, ExplicitBounds: []float64{1}}},
		}}}},
	}}}}}
	jb, _ := protojson.Marshal(mreq)
	r2, _ := newTestReceiver(t, nil)
	w = post(r2, MetricsPath, "application/json", "", jb)
	var mresp colmetricspb.ExportMetricsServiceResponse
	if err := unmarshalAs(w, &mresp); err != nil || w.Code != 200 {
		t.Fatalf("status %d, %v", w.Code, err)
	}
	if ps := mresp.GetPartialSuccess(); ps.GetRejectedDataPoints() != 1 || !strings.Contains(ps.GetErrorMessage(), "do not add up") {
		t.Errorf("partial success %v", ps)
	}
}

// blockingSink blocks every Add until release is closed.
type blockingSink struct{ release chan struct{} }

func (b blockingSink) Add([]metric.Measurement) { <-b.release }

// TestQueueFull: with the processing goroutine blocked, the queue fills and
// requests get 503 with Retry-After; what was queued still reaches the Sink
// after Close.
func TestQueueFull(t *testing.T) {
	release := make(chan struct{})
	r, err := New(Config{Sink: blockingSink{release}, User: testUser, Password: testPass, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	body := marshal(t, logsRequest("web.1", time.Now(), "count#req=1"))
	// The first request is taken by the one processing goroutine, which then
	// blocks in the Sink: only then do QueueDepth more fill the queue.
	if w := post(r, LogsPath, "application/x-protobuf", "", body); w.Code != http.StatusOK {
		t.Fatalf("first request: %d", w.Code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.Stats().Queued != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	var full *httptest.ResponseRecorder
	for i := 1; i < QueueDepth+2 && full == nil; i++ {
		if w := post(r, LogsPath, "application/x-protobuf", "", body); w.Code == http.StatusServiceUnavailable {
			full = w
		}
	}
	if full == nil {
		t.Fatal("no 503 after QueueDepth+2 requests")
	}
	if full.Header().Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q", full.Header().Get("Retry-After"))
	}
	close(release)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.QueueFull != 1 || st.Accepted != QueueDepth+1 || st.Input.Lines != QueueDepth+1 {
		t.Errorf("stats %+v", st)
	}
	if w := post(r, LogsPath, "application/x-protobuf", "", body); w.Code != http.StatusServiceUnavailable {
		t.Errorf("after Close: %d, want 503", w.Code)
	}
	// Refused while closing: counted apart from a full queue.
	if st := r.Stats(); st.Closing != 1 || st.QueueFull != 1 {
		t.Errorf("after Close: Closing %d, QueueFull %d, want 1 and 1", st.Closing, st.QueueFull)
	}
}

// TestConcurrentRequests sends from several goroutines and checks that the
// counts add up (run with -race).
func TestConcurrentRequests(t *testing.T) {
	r, c := newTestReceiver(t, func(cfg *Config) { cfg.Workers = 2 })
	body := gz(t, marshal(t, logsRequest("web-5d8f7c9b4-x2k9p", testNow, "count#req=1", "count#req=2")))
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				if w := post(r, LogsPath, "application/x-protobuf", "gzip", body); w.Code != 200 {
					t.Errorf("status %d", w.Code)
				}
			}
		}()
	}
	wg.Wait()
	if err := r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, m := range c.all() {
		sum += m.Value
	}
	if sum != 300 {
		t.Errorf("sum %v, want 300", sum)
	}
}

func TestNew(t *testing.T) {
	if _, err := New(Config{Sink: &capture{}}); err != ErrNoCredentials {
		t.Errorf("no credentials: %v", err)
	}
	if _, err := New(Config{User: "u", Password: "p"}); err == nil {
		t.Error("nil Sink accepted")
	}
	r, err := New(Config{Sink: &capture{}, InsecureNoAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	req := httptest.NewRequest(http.MethodPost, LogsPath, strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != 200 {
		t.Errorf("InsecureNoAuth: %d", w.Code)
	}
}

// TestDecodeSlots: while MaxConcurrentDecodes requests are being decoded,
// another waits for a slot (and gives up when its client does), then goes
// through once a slot is free.
func TestDecodeSlots(t *testing.T) {
	r, c := newTestReceiver(t, nil)
	for range MaxConcurrentDecodes {
		r.decoding <- struct{}{}
	}
	body := marshal(t, logsRequest("web.1", testNow, "count#req=1"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	req := httptest.NewRequest(http.MethodPost, LogsPath, bytes.NewReader(body)).WithContext(ctx)
	req.Header.Set("Authorization", basicAuth(testUser, testPass))
	req.Header.Set("Content-Type", "application/x-protobuf")
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("with every slot taken: %d, want 503", w.Code)
	}
	done := make(chan int)
	go func() { done <- post(r, LogsPath, "application/x-protobuf", "", body).Code }()
	select {
	case code := <-done:
		t.Fatalf("answered %d while every slot was taken", code)
	case <-time.After(20 * time.Millisecond):
	}
	<-r.decoding
	if code := <-done; code != 200 {
		t.Fatalf("status %d", code)
	}
	for range MaxConcurrentDecodes - 1 {
		<-r.decoding
	}
	if len(r.decoding) != 0 {
		t.Errorf("%d slots still held after the requests", len(r.decoding))
	}
	_ = r.Close(t.Context())
	if n := len(c.all()); n != 1 {
		t.Errorf("%d measurements, want 1", n)
	}
}
