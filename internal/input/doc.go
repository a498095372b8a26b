// Package input is the one pipeline every worker input feeds: it turns log
// messages into l2met measurements and hands them to a Sink (the aggregator).
//
// The inputs live in subpackages and only move bytes:
//
//   - drain: the HTTPS log drain handler (POST /logs, Logplex framing),
//   - logsession: a Platform API log-session tail of the app's own logs,
//   - syslog: a syslog listener over TCP or TLS,
//   - otlp: the OTLP/HTTP receiver of Fir telemetry drains (POST /v1/logs,
//     POST /v1/metrics): log record bodies go through a Processor like any
//     log line; metric data points become measurements and go to the Sink
//     directly,
//
// and stdin is read with (*Processor).ReadLines(ctx, os.Stdin, FormatAny).
//
// A Processor owns the parsing: each goroutine takes a Session (a pooled
// l2met.Parser, a logplex.Scanner and a measurement buffer), feeds it frames or
// lines, and the Session calls Sink.Add with a batch of measurements when its
// buffer holds SinkBatch measurements, when Flush is called, and whenever a
// stream read is about to block. The arrival time is used for every message
// that carries no timestamp of its own.
//
// The data handled, as it arrives from each input:
//
//	drain body (octet counted, no STRUCTURED-DATA):
//	  92 <190>1 2024-05-01T12:00:00.200000+00:00 host app web.1 - count#req=1 measure#db.latency=4ms
//	syslog stream (RFC 5424, octet counted or newline delimited):
//	  <190>1 2024-05-01T12:00:00.200000+00:00 d.7f3a app web.1 - - count#req=1
//	log session and `heroku logs` text:
//	  2024-05-01T12:00:00.200000+00:00 app[web.1]: count#req=1 measure#db.latency=4ms
//	stdin, any of the above or a bare app line:
//	  count#req=1 measure#db.latency=4ms
//
// Each of these becomes, for the source web.1, the measurements
// {req Counter 1} and {db.latency Measure 4 ms}.
//
// Every bound (line length, per-input body size, queue depth, connections) is
// counted in a Stats struct of cumulative counters that the worker exports as
// self-metrics.
package input
