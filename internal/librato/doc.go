// Package librato is the Librato outlet: it turns each flushed bucket into
// JSON request bodies for one of Librato's two APIs and delivers them through
// an outlet.Queue (ordered, bounded, retried with backoff).
//
// The legacy source API (Config.API "metrics", POST /v1/metrics, Basic auth
// user:token) gets one gauge per count# (value = per-bucket sum) and sample#
// (value = last), and for measure# a complex gauge plus three percentile
// gauges, every one with the series' dyno as source:
//
//	{"measure_time":1714564800,"gauges":[
//	 {"name":"app.router.service","source":"web.1","period":60,"attributes":{"display_units_short":"ms"},
//	  "count":3,"sum":30,"min":5,"max":15,"sum_squares":350},
//	 {"name":"app.router.service.median","source":"web.1","period":60,"attributes":{"display_units_short":"ms"},"value":10},
//	 {"name":"app.router.service.perc95",…},{"name":"app.router.service.perc99",…},
//	 {"name":"app.jobs","source":"worker.1","period":60,"value":7}]}
//
// The tagged API (Config.API "measurements", POST /v1/measurements, also how
// AppOptics-compatible endpoints are reached) carries the configured tags
// plus dyno=<source> on every measurement. Per-measurement tags replace the
// top-level ones on Librato, so the full set is always sent per measurement
// and no top-level tags are used; a measure# sends count, sum, min, max and
// last (this API has no sum_squares):
//
//	{"time":1714564800,"period":60,"measurements":[
//	 {"name":"app.router.service","tags":{"dyno":"web.1","app":"myapp"},"count":3,"sum":30,"min":5,"max":15,"last":10},
//	 {"name":"app.jobs","tags":{"dyno":"worker.1","app":"myapp"},"value":7}]}
//
// Names are Prefix + "." + name; characters outside [A-Za-z0-9.:_-] become
// '_' and names are cut to 255 bytes (including a ".median"-style suffix).
// Sources follow the same rule, and the reserved source "all" is sent as
// "_all". Tag values are lowercased (Librato stores them so), with characters
// outside [-.:_?\/A-Za-z0-9 ] replaced by '_'. A series without a source and
// no configured tags is tagged dyno=none, since every measurement needs a tag.
//
// Bodies hold at most MaxMetricsPerPost (300) or MaxMeasurementsPerPost
// (1,000) measurements. Series with an empty name or a value Librato refuses
// (NaN, ±Inf, magnitude ≥ 1e126) are skipped and counted in Stats.Skipped.
//
// Responses: 2xx is delivered; 400 and other 4xx (except 401, 403, 429) drop
// that batch only, logging the response body; 401/403 keep the data and
// retry, logging a credentials error at most once per QueueConfig.AuthLogEvery;
// 429, 5xx and network errors are retried with backoff, waiting at least the
// Retry-After the receiver asked for. Credentials travel only in the
// Authorization header, never follow a redirect to another host or to plain
// http (outlet.SameOrigin), and never appear in errors or logs.
//
// Delivery is at least once: a request the receiver processed but whose
// answer was lost (a timeout after the server committed it) is sent again.
package librato
