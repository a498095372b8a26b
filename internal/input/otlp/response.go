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

// reject counts n rejected records or points, in rejected and in counter
// (one of res's reasons); the first reason is kept.
func (res *result) reject(counter *int64, n int64, reason string) {
	if n <= 0 {
		return
	}
	if res.rejected == 0 {
		res.reason = reason
	}
	res.rejected += n
	*counter += n
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
	write(w, f, httpStatus, `{"code":`+strconv.Itoa(int(code))+`,"message":`+string(jsonappend.String(nil, msg))+`}`,
		appendPair(nil, uint64(code), msg))
}

// writeResponse answers 200 with an ExportLogsServiceResponse or
// ExportMetricsServiceResponse: partial_success is set when something was
// rejected. Both messages have the same shape: partial_success = 1 { int64
// rejected_log_records or rejected_data_points = 1; string error_message = 2 }.
func writeResponse(w http.ResponseWriter, f format, logs bool, res result) {
	js, pb := `{}`, []byte(nil)
	if res.rejected > 0 {
		field := "rejectedDataPoints"
		if logs {
			field = "rejectedLogRecords"
		}
		js = `{"partialSuccess":{"` + field + `":"` + strconv.FormatInt(res.rejected, 10) +
			`","errorMessage":` + string(jsonappend.String(nil, res.reason)) + `}}`
		pb = protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), appendPair(nil, uint64(res.rejected), res.reason))
	}
	write(w, f, http.StatusOK, js, pb)
}

// appendPair appends field 1 (varint n) and field 2 (string s): the shape of
// google.rpc.Status and of a partial success.
func appendPair(b []byte, n uint64, s string) []byte {
	b = protowire.AppendVarint(protowire.AppendTag(b, 1, protowire.VarintType), n)
	return protowire.AppendString(protowire.AppendTag(b, 2, protowire.BytesType), s)
}

// write answers status with the JSON body js or the protobuf body pb, as f
// says.
func write(w http.ResponseWriter, f format, status int, js string, pb []byte) {
	ct, body := "application/x-protobuf", pb
	if f == formatJSON {
		ct, body = "application/json", []byte(js)
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
