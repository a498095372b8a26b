package otlpout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// Why a hand-written decoder: pdata's response type lives in pmetricotlp,
// beside the gRPC client and server, and importing it would link
// google.golang.org/grpc into the worker for two fields. FuzzParseResponse checks it on arbitrary bytes; the tests compare
// it with the canonical generated response type (proto/slim/otlp).

// PartialSuccess is what an OTLP receiver reports about the data points it
// refused in an accepted request.
type PartialSuccess struct {
	RejectedDataPoints int64
	ErrorMessage       string
}

// ErrResponse is wrapped by the errors ParseResponse returns.
var ErrResponse = errors.New("otlp: malformed export response")

// Field numbers of ExportMetricsServiceResponse and
// ExportMetricsPartialSuccess (opentelemetry/proto/collector/metrics/v1),
// and of google.rpc.Status.
const (
	fieldResponsePartialSuccess protowire.Number = 1
	fieldPartialRejected        protowire.Number = 1
	fieldPartialMessage         protowire.Number = 2
	fieldStatusMessage          protowire.Number = 2
)

// ParseResponse decodes the body of a 2xx answer to an OTLP/HTTP metrics
// export: an ExportMetricsServiceResponse in protobuf, or in JSON when
// contentType says so (or, without a content type, when the body starts
// with '{'). An empty body is a full success. Unknown fields are skipped.
// Safe for concurrent use.
func ParseResponse(contentType string, body []byte) (PartialSuccess, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return PartialSuccess{}, nil
	}
	if isJSON(contentType, body) {
		return parseJSONResponse(body)
	}
	var ps PartialSuccess
	err := scanFields(body, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != fieldResponsePartialSuccess || typ != protowire.BytesType {
			return nil
		}
		return scanFields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
			switch {
			case num == fieldPartialRejected && typ == protowire.VarintType:
				ps.RejectedDataPoints = int64(x)
			case num == fieldPartialMessage && typ == protowire.BytesType:
				ps.ErrorMessage = string(v)
			}
			return nil
		})
	})
	if err != nil {
		return PartialSuccess{}, err
	}
	return ps, nil
}

func isJSON(contentType string, body []byte) bool {
	if contentType != "" {
		return strings.Contains(strings.ToLower(contentType), "json")
	}
	b := bytes.TrimSpace(body)
	return len(b) > 0 && b[0] == '{'
}

// scanFields calls f with every field of the protobuf message b: for
// varints x holds the value, for length-delimited fields v the bytes.
func scanFields(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: bad tag: %w", ErrResponse, protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d: %w", ErrResponse, num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

// jsonPartial accepts the proto3 JSON names and the original field names,
// as protobuf JSON parsers must; 64-bit integers may be strings or numbers.
type jsonPartial struct {
	RejectedCamel json.RawMessage `json:"rejectedDataPoints"`
	RejectedSnake json.RawMessage `json:"rejected_data_points"`
	MessageCamel  string          `json:"errorMessage"`
	MessageSnake  string          `json:"error_message"`
}

func parseJSONResponse(body []byte) (PartialSuccess, error) {
	var r struct {
		Camel *jsonPartial `json:"partialSuccess"`
		Snake *jsonPartial `json:"partial_success"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return PartialSuccess{}, fmt.Errorf("%w: %w", ErrResponse, err)
	}
	p := r.Camel
	if p == nil {
		p = r.Snake
	}
	if p == nil {
		return PartialSuccess{}, nil
	}
	ps := PartialSuccess{ErrorMessage: p.MessageCamel}
	if ps.ErrorMessage == "" {
		ps.ErrorMessage = p.MessageSnake
	}
	raw := p.RejectedCamel
	if raw == nil {
		raw = p.RejectedSnake
	}
	if len(raw) > 0 && string(raw) != "null" {
		s := strings.Trim(string(raw), `"`)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return PartialSuccess{}, fmt.Errorf("%w: rejectedDataPoints is not an integer", ErrResponse)
		}
		ps.RejectedDataPoints = n
	}
	return ps, nil
}

// statusMessage returns the message of an error response: the message of a
// google.rpc.Status (protobuf or JSON) when the body is one, else the body
// as text.
func statusMessage(contentType string, body []byte) string {
	if isJSON(contentType, body) {
		var st struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &st) == nil && st.Message != "" {
			return st.Message
		}
		return strings.TrimSpace(string(body))
	}
	if strings.Contains(strings.ToLower(contentType), "protobuf") {
		var msg string
		err := scanFields(body, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			if num == fieldStatusMessage && typ == protowire.BytesType {
				msg = string(v)
			}
			return nil
		})
		if err == nil && msg != "" {
			return msg
		}
	}
	return strings.TrimSpace(string(body))
}
