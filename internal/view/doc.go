// Package view is the worker's live view: a bounded in-memory history of the
// recent buckets of every series, a JSON API over it, and a web page (every
// script and style embedded, nothing loaded from another host) that charts
// each metric with one line per dyno and one for the whole app.
//
// The worker hands every merged bucket to History.Write after its outlets.
// Write keeps a few numbers per series and bucket, never the bucket itself:
//
//	count#http.requests   the bucket's sum
//	sample#memory_rss     the last value by time
//	measure#db.latency    median, perc95, perc99, max and count
//
// and adds, for each metric, the line of all dynos under the reserved source
// AllSource ("*"): for counts the sum of the dynos' sums; for samples the
// average of each dyno's last value (an average stays within the range every
// dyno reports, so it suits percentages, load, latency percentiles emitted as
// samples and sizes alike, where a sum would turn three dynos at 90 % CPU
// into 270 %); for measures the statistics of the merged distribution of all
// dynos (their aggregate.State merged), not an average of percentiles.
//
// History is bounded: Config.Window (6 h by default) but at most
// Config.MaxPoints points per line, and at most Config.MaxSeries per-dyno
// lines. A series beyond the cap is dropped and counted (Stats), as are
// series whose kind or unit differs from the rest of their metric in the same
// bucket and series whose source is AllSource.
//
// The API, served by Handler:
//
//	GET /api/metrics
//	  {"version":7,"resolution":60,"window":21600,"latest":1764597600,"all_source":"*",
//	   "metrics":[{"name":"db.latency","kind":"measure","unit":"ms","updated":1764597600,"version":7,
//	     "sources":[{"source":"web.1","last":1764597600,"ended":false}, …]}, …]}
//	GET /api/series?name=db.latency[&stat=median|perc95|perc99|max|count]
//	  {"name":"db.latency","kind":"measure","unit":"ms","stat":"median","resolution":60,
//	   "latest":1764597600,"version":7,
//	   "series":[{"source":"*","points":[[1764597540,12.5],[1764597600,13]]},
//	             {"source":"web.1","last":1764597600,"ended":false,"points":[…]}, …]}
//
// Times are bucket starts in Unix seconds; points are in ascending time and
// skip buckets in which the source had no value. stat applies to measures
// (median by default); for counts the values are the bucket sums (stat
// "sum"), for samples the last values (stat "last"). A source is "ended"
// when its newest point is EndedAfter buckets (and at least EndedAfterMin)
// older than the newest bucket the view holds. Both answers carry an ETag
// (the view's version), so a page that polls with If-None-Match gets 304
// until a bucket arrives. /api/metrics lists the app's own metrics first and
// the per-interval statistics of its timers and histograms (NAME.count,
// NAME.min … NAME.max beside a NAME.perc95) after them, each group by name;
// the page keeps that order.
//
// In multi-app mode (series with an app) both take &app=APP: /api/metrics
// then lists that app's metrics (the first app's when APP is not one of
// them) and adds "app" and "apps" (every app held), from which the page
// builds its app selector.
package view
