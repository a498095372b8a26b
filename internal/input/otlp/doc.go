// Package otlp receives OpenTelemetry telemetry over OTLP/HTTP, as a Heroku
// Fir telemetry drain sends it, and turns it into measurements: log records
// go through the same l2met parser as a Logplex drain line, metric data points
// become counts, samples and distributions.
//
// A log record as a Fir telemetry drain sends it (OTLP/JSON, abridged):
//
//	{"resourceLogs":[{"resource":{"attributes":[
//	    {"key":"service.name","value":{"stringValue":"my-app"}},
//	    {"key":"heroku.dyno.name","value":{"stringValue":"web-5d8f7c9b4-x2k9p"}}]},
//	  "scopeLogs":[{"logRecords":[{"timeUnixNano":"1714564800123456000",
//	    "body":{"stringValue":"count#req=1 measure#db.latency=4ms"}}]}]}]}
//	→ req (Counter 1), db.latency (Measure 4 ms), source web-5d8f7c9b4-x2k9p
//
// # Endpoints and answers
//
// The Receiver serves POST LogsPath (/v1/logs) and MetricsPath (/v1/metrics)
// with bodies in protobuf (application/x-protobuf) or JSON
// (application/json), identity or gzip Content-Encoding, and answers as the
// OTLP/HTTP specification says: 200 with an Export…ServiceResponse (its
// partial_success counts the records or points rejected, with the first
// reason); 400 for a body that does not decode; 401 for missing or wrong
// Basic credentials (the drain's, compared in constant time); 413 when the
// body or its decompressed form is over MaxBodyBytes or MaxDecodedBytes, or
// holds more than MaxMessages messages; 415
// for another content type or encoding; 503 with Retry-After when the queue
// of decoded requests is full or the Receiver is closing. Error bodies are a
// google.rpc.Status in the request's format.
//
// The body is decoded while the request waits (so that a malformed body gets
// its 400 and rejected records are reported), then queued: parsing the log
// bodies and aggregating happen on the Receiver's goroutines, so the answer
// does not wait on them.
//
// # Log records
//
// The body, when it is a string, is split into lines (a trailing newline or
// a multi-line message) and each line is parsed as a drain message would be:
// l2met pairs, runtime and add-on lines, and router lines, recognised by
// their content (l2met.IsRouterLine) since a telemetry drain has no syslog
// PROCID. A record's time is time_unix_nano, else observed_time_unix_nano,
// else the arrival time. Its source is, in order: a source= pair in the body;
// for router lines the dyno= field; else the value of the first attribute
// named in Config.SourceAttributes found on the record, then on its resource;
// else none. Bodies that are not strings carry no metric and are counted.
//
// # Metrics
//
// Each data point becomes one measurement named after its metric, with the
// source found as for log records (point attributes, then resource
// attributes) and the unit mapped from UCUM (By → bytes, ms, s, MiBy → MB, 1
// and {annotations} → none):
//
//   - Gauge: a Sample.
//   - Sum, monotonic, delta: a Counter of the value.
//   - Sum, monotonic, cumulative: a Counter of the increase since the series'
//     previous point. The first point of a series is the reference and counts
//     nothing, unless its start time is after the Receiver started (then the
//     whole value is new); a start time that changes, or a value that goes
//     down, is a reset, and the new value is the increase. Points older than
//     the previous one are skipped. The previous points are kept for at most
//     MaxCumulativeSeries series, forgotten after CumulativeTTL unseen.
//   - Sum, not monotonic: cumulative is a Sample (the current level), delta a
//     Counter of the change.
//   - Histogram and ExponentialHistogram: a Measure carrying a
//     metric.Distribution (count, sum, min, max and one representative value
//     per bucket: the middle of an explicit bucket, the geometric middle of an
//     exponential one, within min and max), merged into the bucket's
//     distribution so that median, perc95 and perc99 exist downstream.
//     Cumulative histograms are turned into the difference with the previous
//     point as sums are.
//   - Summary: not converted. Its quantiles were computed over a window this
//     worker cannot align with its buckets, and quantiles do not merge; the
//     points are rejected in partial_success and counted.
//
// # Bounds
//
// Every bound is a named constant and counted in Stats when hit:
// MaxBodyBytes, MaxDecodedBytes, MaxMessages (counted on the wire before
// decoding, since a 2-byte message decodes into some 150 bytes of heap),
// MaxNesting (a deeper body is malformed),
// MaxRecords per request (records past it are rejected), MaxAttributes per
// record, point or resource (the record or point is rejected),
// MaxHistogramBuckets, QueueDepth and MaxQueueBytes, MaxCumulativeSeries.
// MaxConcurrentDecodes bounds the requests inflated and decoded at once:
// others wait for a slot. Config.Budget bounds the bytes of every request in
// flight, taken as they arrive, inflate and are decoded (an estimate per
// message); beyond it, 503 with Retry-After (Stats.Busy). Points the
// specification rules out are rejected: negative values on monotonic delta
// sums, start times after the point's time, and names or sources that hold
// control or bidirectional-override characters (metric.UnsafeText).
//
// # Decoding
//
// Bodies are decoded with the canonical generated types of
// go.opentelemetry.io/proto/slim/otlp (google.golang.org/protobuf for
// protobuf, its protojson for JSON; the slim module is the same messages
// without the gRPC service stubs) rather than the Collector's pdata: the
// receiver needs the messages, not the Collector's data model, and it adds
// nothing the project does not already link. The request body is decoded as
// logs.v1.LogsData and metrics.v1.MetricsData, which the OTLP specification
// defines as wire-compatible with ExportLogsServiceRequest and
// ExportMetricsServiceRequest; this keeps the collector service packages
// (and with them gRPC) out of the worker binary. The responses are encoded
// by hand (two fields) and checked against the canonical response types in
// the tests. protojson accepts what OTLP/JSON allows: lowerCamelCase and
// original field names, 64-bit integers as strings or numbers, enums as
// integers; unknown fields are ignored as the specification requires. Trace
// and span ids (hex in OTLP/JSON, base64 in protojson) are not used.
package otlp
