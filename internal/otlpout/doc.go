// Package otlpout is the OpenTelemetry (OTLP/HTTP) metrics outlet: it turns
// flushed buckets into OTLP export requests (protobuf or JSON, gzip or not)
// and delivers them through an outlet.Queue to any OTLP receiver:
// SolarWinds Observability (Librato's successor), Grafana Cloud, Honeycomb,
// Datadog, New Relic, an OpenTelemetry Collector. It is configured with the
// standard OTEL_EXPORTER_OTLP_* variables (see Env). (The OTLP receiver,
// which takes OTLP in, is another package: internal/input/otlp.)
//
// # Mapping
//
// With Prefix "us-east.prod.app", Tags {"env": "prod"} and cumulative
// temporality, these lines in the 60 s bucket starting 12:00:00 (the first
// bucket of these series)
//
//	source=web.1 count#requests=5 measure#router.service=12ms measure#router.service=20ms sample#memory_rss=21.22MB
//
// give three metrics, each data point with the attributes {env="prod",
// source="web.1"}, start time 12:00:00 and time 12:01:00:
//
//	us-east.prod.app.requests        Sum, monotonic, cumulative, unit ""     5
//	us-east.prod.app.router.service  ExponentialHistogram, cumulative, "ms"  count 2, sum 32, min 12, max 20,
//	                                 scale 7 (the finest at which 12..20 fit 160 buckets),
//	                                 one value in the bucket of 12 and one in that of 20
//	us-east.prod.app.memory_rss      Gauge, unit "MiBy"                      21.22
//
// If the next minute brings count#requests=3, its point says 8 with the same
// start time 12:00:00 and time 12:02:00 (with delta temporality: 3, start
// 12:01:00).
//
//	l2met         OTLP
//	count#x=N     Sum (monotonic). Delta: the bucket's sum, start = bucket start.
//	              Cumulative: a running total per series, start = its first bucket's start
//	              (or Series.Totals' Start and Sum with shared state).
//	sample#x=V    Gauge: the bucket's last value.
//	measure#x=V   ExponentialHistogram: exact count, sum, min and max; buckets (below).
//
// Every data point's time is the bucket end, or now when that is in the
// future (a partial bucket flushed at shutdown); its start time is the
// bucket start (for gauges too) except for cumulative points. Names are
// Prefix + "." + name; units map to UCUM (see UCUM: ms, s, By, MiBy, %, and
// {pages} for others), values are never scaled. The dyno (or add-on, or
// "router") is the data point attribute "source" (omitted when empty), the
// Tags follow; the resource carries the Config.Resource attributes
// (service.name at least) and the scope is "github.com/dynometrics/dynometrics".
//
// # Histograms
//
// A measure# series keeps its raw values up to aggregate.ExactLimit (1,000)
// values, then a DDSketch with 0.5% relative accuracy. Exact series start
// at MaxScale (20) and every value lands in the bucket that holds it, so
// the nearest-rank value of every quantile lies in the bucket where its
// rank lands, exactly. Sketch series start at SketchScale (6, buckets 1.09%
// wide, no narrower than a sketch bin) and each bin's count goes to the
// bucket of its representative value (clamped to [min, max]); the
// quantiles the other outlets report (Series.Median, P95, P99) then lie in
// the bucket where their rank lands, and the true nearest-rank value lies
// within 0.5% of that bucket's bounds. Either way the scale is lowered
// until each sign fits in MaxBuckets (160) buckets, as the SDKs do; zeros
// go to the zero count (zero_threshold 0); sum is sent for negative values
// too.
//
// # Cumulative state
//
// Cumulative sums and histograms are kept in memory per series (name,
// unit, source), bounded by MaxTrackedSeries and MaxTrackedHistograms
// (least recently updated forgotten first, Stats.Evicted). A forgotten
// series, and every series after a restart, starts again with a new start
// time, which OTLP defines as a reset. A bucket not newer than the last one
// sent for a series (a late flush) is added to the totals but not sent
// (Stats.Late). With shared state (Series.Totals set), sums are Totals.Sum
// from Totals.Start, so they continue across workers and restarts; a
// histogram cannot be rebuilt from totals, so the outlet keeps its own and
// checks it against Totals.Count: when another worker flushed buckets of
// the series in between, the histogram starts again at this bucket
// (Stats.Resets). Delta temporality keeps no state.
//
// # Delivery
//
// Requests carry at most MaxPointsPerRequest data points (default 1,000)
// and about MaxRequestBytes bytes before compression (default 400 KiB,
// under Datadog's 500 KB limit), and go through an outlet.Queue with Concurrency 1, so a series' points
// arrive in order. 429, 502, 503, 504 and network errors (timeouts
// included) are retried with backoff, waiting at least the Retry-After the
// receiver asked for; 401 and 403 are retried and logged at most once a
// minute (credentials can be fixed without losing data); every other status
// drops the request, counted (Stats.Rejected) and logged with the
// receiver's message, as OTLP says it must not be retried. A 2xx answer
// with a partial_success is accepted: its rejected points are counted
// (Stats.PartialDropped) and logged at most once a minute (the answer is
// decoded with go.opentelemetry.io/proto/slim/otlp's generated type, in
// protobuf or JSON: response.go). Header values
// (API keys) and the endpoint's query never appear in errors or logs, and
// no header follows a redirect to another host or to plain http.
package otlpout
