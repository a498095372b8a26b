package input

// IsWorkerOutput reports whether msg is a line the worker's local outlet
// (internal/console) printed:
//
//	bucket=2026-12-01T14:00:00Z period=60s source=web.1 count#http.requests=3
//
// When the worker runs in the app it measures (log sessions, or a drain of
// the same app) and prints buckets to stdout, those lines come back through
// the log stream; their count# pairs are the worker's own results and must
// never be counted again. Every input skips them (Processor.OwnLines counts them). An app
// line is taken for one only when it starts with bucket=, an RFC 3339 UTC
// second and " period=". The worker's self-metrics (at=metrics
// count#worker.input.lines=…) are not affected: they are meant to come back
// as the worker's own metrics, with its dyno as source.
func IsWorkerOutput(msg []byte) bool {
	const (
		prefix = "bucket="
		stamp  = "0000-00-00T00:00:00Z" // 0: a digit
		period = " period="
	)
	if len(msg) < len(prefix)+len(stamp)+len(period) || msg[0] != 'b' || string(msg[:len(prefix)]) != prefix {
		return false
	}
	for i, c := range msg[len(prefix) : len(prefix)+len(stamp)] {
		if want := stamp[i]; want == '0' && (c < '0' || c > '9') || want != '0' && c != want {
			return false
		}
	}
	return string(msg[len(prefix)+len(stamp):len(prefix)+len(stamp)+len(period)]) == period
}
