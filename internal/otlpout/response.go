package otlpout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	colmetricspb "go.opentelemetry.io/proto/slim/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Responses are decoded with the canonical generated type of
// go.opentelemetry.io/proto/slim/otlp (pdata's lives in pmetricotlp, beside
// the gRPC client, and would link gRPC into the worker; the slim module's
// does not) by the protobuf runtime the OTLP receiver links anyway.
// FuzzParseResponse checks it on arbitrary bytes.

// PartialSuccess is what an OTLP receiver reports about the data points it
// refused in an accepted request.
type PartialSuccess struct {
	RejectedDataPoints int64
	ErrorMessage       string
}

// ErrResponse is wrapped by the errors ParseResponse returns.
var ErrResponse = errors.New("otlp: malformed export response")

// ParseResponse decodes the body of a 2xx answer to an OTLP/HTTP metrics
// export: an ExportMetricsServiceResponse in protobuf, or in JSON when
// contentType says so (or, without a content type, when the body starts
// with '{'). An empty body is a full success. Unknown fields are skipped.
// Safe for concurrent use.
func ParseResponse(contentType string, body []byte) (PartialSuccess, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return PartialSuccess{}, nil
	}
	var r colmetricspb.ExportMetricsServiceResponse
	var err error
	if isJSON(contentType, body) {
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(body, &r)
	} else {
		err = proto.Unmarshal(body, &r)
	}
	if err != nil {
		return PartialSuccess{}, fmt.Errorf("%w: %w", ErrResponse, err)
	}
	ps := r.GetPartialSuccess()
	return PartialSuccess{ps.GetRejectedDataPoints(), ps.GetErrorMessage()}, nil
}

func isJSON(contentType string, body []byte) bool {
	if contentType != "" {
		return strings.Contains(strings.ToLower(contentType), "json")
	}
	b := bytes.TrimSpace(body)
	return len(b) > 0 && b[0] == '{'
}

// statusMessage returns the message of an error response: the message of a
// google.rpc.Status (protobuf or JSON) when the body is one, else the body
// as text.
func statusMessage(contentType string, body []byte) string {
	if isJSON(contentType, body) {
		var st struct{ Message string } // encoding/json matches "message" to it
		if json.Unmarshal(body, &st) == nil && st.Message != "" {
			return st.Message
		}
	} else if strings.Contains(strings.ToLower(contentType), "protobuf") {
		// google.rpc.Status: string message = 2 (genproto stays out of go.mod).
		for b := body; len(b) > 0; {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 {
				break
			}
			b = b[n:]
			if v, m := protowire.ConsumeBytes(b); num == 2 && typ == protowire.BytesType && m >= 0 && len(v) > 0 {
				return string(v)
			}
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				break
			}
			b = b[n:]
		}
	}
	return strings.TrimSpace(string(body))
}
