package otlp

import (
	"net/http"
	"strconv"

	"github.com/dynometrics/dynometrics/internal/jsonappend"
	"google.golang.org/protobuf/encoding/protowire"
)

// result is what the checks of one request found.
type result struct {
	accepted int64  // records or points kept
	rejected int64  // records or points rejected, for the reasons below
	reason   string // the first rejection

	tooMany, tooManyAtt, invalid, summaries int64
	negative, startAfter, unsafe            int64 // of invalid
}

// reject counts n rejected records or points; the first reason is kept.
func (res *result) reject(n int64, reason string) {
	if n <= 0 {
		return
	}
	if res.rejected == 0 {
		res.reason = reason
	}
	res.rejected += n
}

// google.rpc.Code values used in error bodies.
const (
	codeInvalidArgument = 3
	codeUnavailable     = 14
	codeUnauthenticated = 16
)

// writeStatus answers an error with a google.rpc.Status body in the
// request's format, as OTLP/HTTP asks. The message never holds a secret.
func writeStatus(w http.ResponseWriter, f format, httpStatus int, code int32, msg string) {
	var body []byte
	if f == formatJSON {
		w.Header().Set("Content-Type", "application/json")
		body = []byte(`{"code":` + strconv.Itoa(int(code)) + `,"message":` + string(jsonappend.String(nil, msg)) + `}`)
	} else {
		w.Header().Set("Content-Type", "application/x-protobuf")
		// google.rpc.Status: int32 code = 1; string message = 2.
		body = protowire.AppendTag(body, 1, protowire.VarintType)
		body = protowire.AppendVarint(body, uint64(code))
		body = protowire.AppendTag(body, 2, protowire.BytesType)
		body = protowire.AppendString(body, msg)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(httpStatus)
	_, _ = w.Write(body)
}

// writeResponse answers 200 with an ExportLogsServiceResponse or
// ExportMetricsServiceResponse: partial_success is set when something was
// rejected. Both messages have the same shape: partial_success = 1 { int64
// rejected_log_records or rejected_data_points = 1; string error_message = 2 }.
func writeResponse(w http.ResponseWriter, f format, logs bool, res result) {
	var body []byte
	if f == formatJSON {
		w.Header().Set("Content-Type", "application/json")
		if res.rejected == 0 {
			body = []byte(`{}`)
		} else {
			field := "rejectedDataPoints"
			if logs {
				field = "rejectedLogRecords"
			}
			body = []byte(`{"partialSuccess":{"` + field + `":"` + strconv.FormatInt(res.rejected, 10) +
				`","errorMessage":` + string(jsonappend.String(nil, res.reason)) + `}}`)
		}
	} else {
		w.Header().Set("Content-Type", "application/x-protobuf")
		if res.rejected > 0 {
			var ps []byte
			ps = protowire.AppendTag(ps, 1, protowire.VarintType)
			ps = protowire.AppendVarint(ps, uint64(res.rejected))
			ps = protowire.AppendTag(ps, 2, protowire.BytesType)
			ps = protowire.AppendString(ps, res.reason)
			body = protowire.AppendTag(body, 1, protowire.BytesType)
			body = protowire.AppendBytes(body, ps)
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
