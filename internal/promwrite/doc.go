// Package promwrite is the Prometheus remote-write outlet: it turns flushed
// buckets into remote write 1.0 requests (protobuf WriteRequest, snappy block
// compression) and delivers them through an outlet.Queue to Prometheus
// (--web.enable-remote-write-receiver), VictoriaMetrics, Mimir, Thanos
// Receive, Cortex or a hosted service.
//
// # Mapping
//
// With Prefix "us-east.prod.app" and Tags {"app": "shop"}, these drain lines
//
//	source=web.1 count#requests=5 measure#router.service=12ms sample#memory_rss=21.22MB
//
// give, for a 60 s bucket starting 12:00:00 (samples carry the bucket END,
// 12:01:00, in milliseconds):
//
//	us_east_prod_app_requests_total{app="shop",source="web.1"}                          5 (running total)
//	us_east_prod_app_router_service_seconds{app="shop",quantile="0.5",source="web.1"}   0.012
//	us_east_prod_app_router_service_seconds{app="shop",quantile="0.95",source="web.1"}  0.012
//	us_east_prod_app_router_service_seconds{app="shop",quantile="0.99",source="web.1"}  0.012
//	us_east_prod_app_router_service_seconds_sum{app="shop",source="web.1"}              0.012 (running total)
//	us_east_prod_app_router_service_seconds_count{app="shop",source="web.1"}            1 (running total)
//	us_east_prod_app_router_service_seconds_min{app="shop",source="web.1"}              0.012
//	us_east_prod_app_router_service_seconds_max{app="shop",source="web.1"}              0.012
//	us_east_prod_app_memory_rss_bytes{app="shop",source="web.1"}                        22250782.72
//
// In table form:
//
//	l2met              Prometheus series                          value
//	count#x=N          x_total                                    running total of the per-bucket sums (counter)
//	measure#x=V        x{quantile="0.5"|"0.95"|"0.99"}            per-bucket median, p95, p99
//	                   x_sum, x_count                             running totals of sum and count (like a summary)
//	                   x_min, x_max                               per-bucket min and max (gauges)
//	sample#x=V         x                                          last value in the bucket (gauge)
//
// Names: Prefix and name are joined with "_" and sanitized to
// [a-zA-Z_:][a-zA-Z0-9_:]* (every other character, dots and dashes included,
// becomes "_"; a leading digit gets a "_" in front). "_total" is not doubled
// when the name already ends with it.
//
// Units are converted to Prometheus' base units and named by suffix, as the
// Prometheus naming guide asks: ns, us, µs, ms, s, sec → "_seconds" (values
// scaled); B, byte(s), kB/KB/KiB, MB/MiB, GB/GiB → "_bytes" (powers of 1024,
// as Heroku's runtime metrics and Postgres mean them); % → "_percent" (value
// kept). Any other unit is sanitized and appended as is ("pages" →
// "_pages"), value kept. The suffix is not doubled either.
//
// Labels: "source" is the dyno or add-on (omitted when empty; invalid UTF-8
// replaced by U+FFFD); Tags are added to every series, names sanitized to
// [a-zA-Z_][a-zA-Z0-9_]*; "quantile" on the summary series. Labels are sorted
// by name and series by name, source and quantile, as the spec requires.
// Two inputs that map to the same series (a.b and a_b) would be refused by the
// receiver together with the whole request, so only the first is sent
// (Stats.Collisions).
//
// # Cumulative state
//
// Prometheus counters and summary _sum/_count are cumulative, so the outlet
// keeps running totals per input series (name, unit, source, kind) in memory,
// bounded by Config.MaxTrackedSeries (least recently updated forgotten first,
// Stats.Evicted). A series' first bucket starts its total at that bucket's
// sum; totals start again at zero when the worker restarts, which
// rate()/increase() handle as a counter reset. A bucket that is not newer
// than the last one sent for a series (a late flush) updates the totals but
// is not sent, since the receiver would refuse it as out of order
// (Stats.Late); its values appear in the next bucket's totals.
//
// # Delivery
//
// Requests carry at most Config.MaxSeriesPerRequest series (default 2,000) and
// go through an outlet.Queue with Concurrency 1 by default, so buckets land in
// order; 5xx, 429 and network errors are retried with backoff (at least the
// Retry-After the receiver asked for), 401/403 are
// retried and logged at most once a minute, other 4xx (Prometheus answers 400
// for out-of-order or too-old samples) drop the request, counted
// (Stats.Rejected, Queue.DroppedPermanent) and logged with the response body.
// Batches older than an hour (DefaultMaxAge) are dropped: Prometheus would
// refuse them as out of bounds. Credentials never appear in errors or logs,
// and never follow a redirect to another host or to plain http.
package promwrite
