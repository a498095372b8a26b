package otlp

import (
	"bytes"
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/l2met"
	commonpb "go.opentelemetry.io/proto/slim/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/slim/otlp/logs/v1"
)

var (
	appHeroku = []byte("heroku")
	procRoute = []byte("router")
)

// checkLogs enforces MaxRecords and MaxAttributes on a decoded request,
// removing the records it rejects, and counts what it keeps.
func (r *Receiver) checkLogs(d *logspb.LogsData) result {
	var res result
	for _, rl := range d.GetResourceLogs() {
		if len(rl.GetResource().GetAttributes()) > MaxAttributes {
			n := int64(0)
			for _, sl := range rl.GetScopeLogs() {
				n += int64(len(sl.GetLogRecords()))
			}
			res.reject(&res.tooManyAtt, n, "resource with more than "+strconv.Itoa(MaxAttributes)+" attributes")
			rl.ScopeLogs = nil
			continue
		}
		for _, sl := range rl.GetScopeLogs() {
			sl.LogRecords = slices.DeleteFunc(sl.LogRecords, func(lr *logspb.LogRecord) bool {
				switch {
				case lr == nil:
				case res.accepted >= MaxRecords:
					res.reject(&res.tooMany, 1, "more than "+strconv.Itoa(MaxRecords)+" log records in the request")
				case len(lr.GetAttributes()) > MaxAttributes:
					res.reject(&res.tooManyAtt, 1, "log record with more than "+strconv.Itoa(MaxAttributes)+" attributes")
				default:
					res.accepted++
					return false
				}
				return true
			})
		}
	}
	return res
}

// processLogs parses the string bodies of the records with s.
func (r *Receiver) processLogs(s *input.Session, d *logspb.LogsData, arrival time.Time) {
	for _, rl := range d.GetResourceLogs() {
		resSource := r.source(rl.GetResource().GetAttributes())
		for _, sl := range rl.GetScopeLogs() {
			for _, lr := range sl.GetLogRecords() {
				body, ok := lr.GetBody().GetValue().(*commonpb.AnyValue_StringValue)
				if !ok {
					r.nonString.Add(1)
					continue
				}
				msg := bytesOf(body.StringValue)
				t := arrival
				if ns := cmp.Or(lr.GetTimeUnixNano(), lr.GetObservedTimeUnixNano()); ns != 0 {
					t = unixNano(ns)
				}
				src := bytesOf(r.sourceOf(lr.GetAttributes(), resSource))
				// A body may hold several lines (an SDK's multi-line message, a
				// trailing newline): each is a message, as Logplex splits them.
				for line := range bytes.Lines(msg) {
					line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte{'\n'}), []byte{'\r'})
					switch {
					case len(line) == 0:
					case l2met.IsRouterLine(line):
						s.Message(t, appHeroku, procRoute, line)
					default:
						s.Message(t, nil, src, line)
					}
				}
			}
		}
	}
}

// unixNano converts OTLP's fixed64 nanoseconds to a UTC time; values beyond
// int64 are clamped (the aggregator then refuses them as too far ahead).
func unixNano(ns uint64) time.Time {
	return time.Unix(0, int64(min(ns, 1<<63-1))).UTC()
}
