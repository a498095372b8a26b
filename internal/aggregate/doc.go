// Package aggregate turns parsed measurements into time buckets of per-series
// statistics: the stage between parsing (package l2met) and the outlets.
//
// A measurement such as
//
//	metric.Measurement{Name: "router.service", Source: "web.1", Kind: metric.Measure,
//	                  Value: 31, Unit: "ms", Time: 2024-05-01T12:00:07Z}
//
// (from the router line "… dyno=web.1 connect=1ms service=31ms …" or from
// "measure#router.service=31ms source=web.1") goes into the bucket its own
// timestamp falls in, aligned to the resolution in UTC (here 12:00:00 for
// 60s), and into the series keyed by (name, source) — (app, name, source) in
// multi-app mode (metric.Measurement.App). When the bucket's end
// plus the grace has passed, Flush hands it out as
//
//	Bucket{Start: 2024-05-01T12:00:00Z, Period: 60s, Series: []Series{
//	    {Name: "router.service", Source: "web.1", Unit: "ms", Kind: metric.Measure,
//	     Count: 3, Sum: 75, Min: 12, Max: 32, SumSquares: 2129, Last: 32,
//	     Median: 31, P95: 32, P99: 32},
//	}}
//
// Per kind: count# values are summed; sample# keeps the value with the latest
// timestamp (ties: the later arrival); measure# keeps count, sum, min, max,
// sum of squares, last, and the nearest-rank median, 95th and 99th
// percentiles — exact up to ExactLimit (1,000) values per series and bucket,
// within 1% relative error beyond, where the values move into a DDSketch
// (github.com/DataDog/sketches-go) so that memory per series stays bounded.
//
// Lines arriving for a bucket already flushed are counted as late and never
// change what was sent. Timestamps too far ahead (Config.MaxFuture) or behind
// (Config.MaxAge) the clock are dropped and counted, as are measurements that
// conflict with their series' kind or unit, or that carry a NaN or infinite
// value. Config.MaxSeries bounds the series of a bucket, shared fairly: series
// of the previous buckets keep their place (with shared state, those
// TakeStates handed over for buckets whose deadline passed), and one source
// cannot take all the room for new ones, nor, in multi-app mode, one app the
// part promised to the others (admit.go; counted per app in Config.Apps); a
// measurement refused a series is dropped and counted by reason. Stats
// reports all of these for self-metrics.
//
// State is the mergeable form of one series: buckets from several worker
// processes combine with TakeStates, State.Merge and State's binary
// marshalling, giving what a single process seeing every line would flush.
//
// Concurrency: Add is called from every input goroutine at once; the open
// series live in shards picked by a hash of (name, source), each with its own
// mutex, and adding to an existing series does not allocate. Flush marks the
// due buckets as flushed before taking them out of the shards, so a
// measurement is either in a flushed bucket or counted late — never lost,
// never sent twice.
package aggregate
