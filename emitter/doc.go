// Package emitter prints the metrics of a go-metrics registry
// (github.com/rcrowley/go-metrics) as l2met log lines on standard output,
// where Heroku's log router picks them up and a dynometrics worker (or any
// l2met-compatible drain) turns them into metrics. A sample emission:
//
//	at=metrics count#db.query.count=5 sample#db.query.min=1ms sample#db.query.mean=4.4ms sample#db.query.median=3ms sample#db.query.perc95=10.4ms sample#db.query.perc99=11.68ms sample#db.query.max=12ms count#http.requests=120 sample#queue.depth=3
//
// # Usage
//
//	reg := metrics.NewRegistry()
//	requests := metrics.GetOrRegisterCounter("http.requests", reg)
//	latency := emitter.GetOrRegisterTimer("http.request", reg) // per-interval statistics
//
//	cfg, err := emitter.FromEnv() // EMITTER_INTERVAL, EMITTER_PREFIX, EMITTER_SOURCE, …
//	if err != nil { … }
//	cfg.Registry = reg
//	em, err := emitter.New(cfg)
//	if err != nil { … }
//	em.Start()      // emits every 60 s, on the minute
//	defer em.Stop() // when main returns: emits once more and waits until it is written
//
// The complete program, with a web server stopped on SIGTERM, is
// examples/quickstart in this module. Stop returns only after the final
// emission, so a dyno stopping on SIGTERM still reports everything it
// counted; call it after the application stopped counting (after
// http.Server.Shutdown). Run(ctx) is the same loop for callers that manage the
// goroutine themselves: it returns after the final emission, so wait for it.
// Flush and WriteTo emit once.
//
// # Timing
//
// Run emits just before every wall-clock multiple of Interval (AlignedTicker:
// at hh:mm:59 for 60 s), so each emission reaches Heroku's log router, which
// timestamps the line, inside the time bucket that the emission describes.
// Timer and histogram statistics (min, mean, percentiles, max) describe one
// emission interval and are printed as sample#, of which the worker keeps the
// last per bucket: set EMITTER_INTERVAL equal to the worker's
// METRICS_RESOLUTION (or a multiple of it). Counters are right for any
// interval: the worker sums them.
//
// # Mapping
//
//	go-metrics type                      line pairs
//	Counter                              count#name=N   change of Count() since the previous emission
//	Meter                                count#name=N   events since the previous emission
//	Gauge, GaugeFloat64, functional ones sample#name=V
//	Set (this package, statsd |s)        count#name=N   distinct values since the previous emission
//	Timer (NewTimer, GetOrRegisterTimer) count#name.count, sample#name.min, .mean, .median, .perc95, .perc99, .max
//	                                     over the durations of the interval, in milliseconds: sample#db.query.perc95=12.5ms
//	Histogram (NewHistogram, …)          the same statistics without a unit
//	plain go-metrics Timer, Histogram    count#name.count exact for the interval; the other statistics are the
//	                                     go-metrics sample's own (exponentially decayed over about 5 minutes for
//	                                     metrics.NewTimer), printed only when the interval had values
//	Healthcheck                          nothing
//
// Counters and meters are read, not reset: the Emitter remembers the value it
// last printed and prints the difference, so an increment is printed exactly
// once whatever it races with, and the application can still read Count(). A
// counter that is decremented prints a negative count; do not Clear() a
// counter the Emitter prints. Timers and histograms made by this package use a
// Sample that the Emitter empties at each emission: percentiles describe the
// interval only (up to DefaultSampleSize values per interval are kept for
// percentiles; count, min, mean and max stay exact beyond it). A timer or
// histogram with no values in the interval prints only count#name.count=0.
// Values that are NaN or ±Inf are skipped and counted in Stats.NonFinite.
//
// # Names
//
// A printed name is Config.Prefix, a '.', then the registry name with every
// byte outside [A-Za-z0-9.:_-] replaced by '_' (see SanitizeName). The name
// and its statistic suffix (.count, .perc95, …) together are cut to
// MaxNameLen (255) bytes by shortening the name, so the suffixes survive.
// Two registry names that sanitize to the same name are printed twice under
// it (the worker adds the counts). Empty names are skipped.
//
// # Lines
//
// Every line starts with at=metrics, then source=<Config.Source> when one is
// set; without a source the log router's dyno name (web.1) is the source.
// Pairs are sorted by printed name (the Go runtime metrics of Config.Runtime,
// go.*, sort with them), numbers are never in exponent form, and a line holds
// as many pairs as fit in Config.MaxLineBytes (1,024 bytes by default, far
// below Heroku's 10,000-byte line limit); lines break between pairs.
// Non-integer values have at most SignificantDigits (12) significant digits.
// Lines are written in chunks of whole lines of at most PipeBuf bytes.
//
// # statsd
//
// With Config.StatsdAddr set (EMITTER_STATSD_ADDR=127.0.0.1:8125), any process
// in the dyno can send statsd over UDP; lines feed the same registry and leave
// with the next emission:
//
//	requests:1|c            counter (registered as metrics.Counter)
//	requests:1|c|@0.1       counter with sample rate: adds 10 (fractions carry over)
//	db.query:12.5|ms        timer (this package's Timer)
//	payload:512|h           histogram (per-interval, three decimals kept)
//	queue:7|g  queue:+2|g   gauge (metrics.GaugeFloat64): set, or change with +N/-N
//	users:alice|s           set: distinct values per interval
//
// A packet holds lines separated by '\n'. DogStatsD tags (|#k:v) are accepted
// and ignored, sample rates of timers and histograms are ignored. Malformed
// lines and lines whose name is registered as another type are skipped and
// counted (Stats.Statsd); the other lines of the packet still count. Memory is
// bounded whatever a sender does: at most MaxStatsdNames names, values (and a
// counter's value over its sample rate, and gauges) within ±MaxStatsdValue,
// MaxSetSize values per set and MaxStatsdSetValues across sets per interval,
// each set value kept as a 64-bit hash whatever its size; lines refused by a
// bound are counted (NameLimit, OutOfRange, SetOverflow). The bridge
// remembers the registry metric behind each statsd name: do not unregister a
// metric that statsd feeds.
package emitter
