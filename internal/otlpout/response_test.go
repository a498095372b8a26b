package otlpout

import (
	"errors"
	"testing"

	colmetricspb "go.opentelemetry.io/proto/slim/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// TestParseResponse decodes bodies the canonical generated response type
// encodes, in both formats, and checks malformed and foreign bodies.
func TestParseResponse(t *testing.T) {
	pd := func(rejected int64, msg string, json bool) []byte {
		r := &colmetricspb.ExportMetricsServiceResponse{PartialSuccess: &colmetricspb.ExportMetricsPartialSuccess{
			RejectedDataPoints: rejected, ErrorMessage: msg}}
		var b []byte
		var err error
		if json {
			b, err = protojson.Marshal(r)
		} else {
			b, err = proto.Marshal(r)
		}
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := map[string]struct {
		ct   string
		body []byte
		want PartialSuccess
		err  bool
	}{
		"empty":                 {ct: "application/x-protobuf", body: nil},
		"full success protobuf": {ct: "application/x-protobuf", body: pd(0, "", false)},
		"partial protobuf":      {ct: "application/x-protobuf", body: pd(17, "name too long", false), want: PartialSuccess{17, "name too long"}},
		"partial JSON":          {ct: "application/json", body: pd(3, "bad unit", true), want: PartialSuccess{3, "bad unit"}},
		"JSON number":           {ct: "application/json; charset=utf-8", body: []byte(`{"partialSuccess":{"rejectedDataPoints":5}}`), want: PartialSuccess{5, ""}},
		"JSON snake case":       {ct: "application/json", body: []byte(`{"partial_success":{"rejected_data_points":"2","error_message":"x"}}`), want: PartialSuccess{2, "x"}},
		"JSON without type":     {body: []byte(` {"partialSuccess":{"rejectedDataPoints":"1"}}`), want: PartialSuccess{1, ""}},
		"JSON empty object":     {ct: "application/json", body: []byte(`{}`)},
		"unknown fields":        {ct: "application/x-protobuf", body: append([]byte{0x10, 0x05, 0x1a, 0x01, 'x'}, pd(4, "m", false)...), want: PartialSuccess{4, "m"}},
		"truncated protobuf":    {ct: "application/x-protobuf", body: pd(4, "message", false)[:5], err: true},
		"bad JSON":              {ct: "application/json", body: []byte(`{"partialSuccess":`), err: true},
		"JSON bad count":        {ct: "application/json", body: []byte(`{"partialSuccess":{"rejectedDataPoints":"many"}}`), err: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseResponse(tc.ct, tc.body)
			if tc.err {
				if !errors.Is(err, ErrResponse) {
					t.Fatalf("err %v, want ErrResponse", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestStatusMessage(t *testing.T) {
	// google.rpc.Status{code: 3, message: "bad"} in protobuf.
	pb := []byte{0x08, 0x03, 0x12, 0x03, 'b', 'a', 'd'}
	tests := map[string]struct{ ct, body, want string }{
		"protobuf status": {"application/x-protobuf", string(pb), "bad"},
		"JSON status":     {"application/json", `{"code":3,"message":"too many attributes"}`, "too many attributes"},
		"plain text":      {"text/plain", " upstream timeout \n", "upstream timeout"},
		"JSON no message": {"application/json", `{"error":"x"}`, `{"error":"x"}`},
	}
	for name, tc := range tests {
		if got := statusMessage(tc.ct, []byte(tc.body)); got != tc.want {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
}

// FuzzParseResponse: any body gives a result or ErrResponse, never a panic,
// and a result, encoded again in the body's format, decodes to itself.
func FuzzParseResponse(f *testing.F) {
	f.Add("application/x-protobuf", []byte{0x0a, 0x05, 0x08, 0x11, 0x12, 0x01, 'x'})
	f.Add("application/json", []byte(`{"partialSuccess":{"rejectedDataPoints":"3","errorMessage":"m"}}`))
	f.Add("", []byte(`{}`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		got, err := ParseResponse(ct, body)
		if err != nil {
			if !errors.Is(err, ErrResponse) {
				t.Fatalf("error %v does not wrap ErrResponse", err)
			}
			return
		}
		r := &colmetricspb.ExportMetricsServiceResponse{PartialSuccess: &colmetricspb.ExportMetricsPartialSuccess{
			RejectedDataPoints: got.RejectedDataPoints, ErrorMessage: got.ErrorMessage}}
		again, err := proto.Marshal(r)
		if isJSON(ct, body) {
			again, err = protojson.Marshal(r)
		}
		if err != nil {
			return // a message that is not valid UTF-8 cannot be encoded again
		}
		if back, err := ParseResponse(ct, again); err != nil || back != got {
			t.Fatalf("ParseResponse %+v; encoded again %q: %+v, %v", got, again, back, err)
		}
	})
}
