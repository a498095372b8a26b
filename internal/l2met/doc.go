// Package l2met turns one log message into measurements: the l2met
// conventions that apps (and the emitter package) print, and the lines Heroku
// writes itself: dyno runtime metrics, router lines, add-on metrics, Logplex's
// L10 drop notices and dyno error codes.
//
// A sample of what it reads (APP-NAME PROCID MSG) and what it makes of it:
//
//	app    web.1           count#req=1 measure#db.latency=4ms sample#cpu=99.5%
//	       → req (Counter 1), db.latency (Measure 4 ms), cpu (Sample 99.5 %), source web.1
//	heroku web.1           source=web.1 dyno=heroku.2808254.d97d… sample#memory_rss=21.22MB
//	       → memory_rss (Sample 21.22 MB), source web.1
//	heroku web.1           source=heroku.2808254.web.1.d97d… measure=memory_rss val=21.22 units=MB
//	       → memory_rss (Measure 21.22 MB), source web.1
//	heroku router          at=error code=H12 … dyno=web.2 connect=0ms service=30000ms status=503 bytes=0
//	       → router.error.H12 (Counter 1), router.connect (Measure 0 ms),
//	         router.service (Measure 30000 ms), router.status.5xx (Counter 1),
//	         router.bytes (Measure 0 bytes), source web.2
//	app    heroku-postgres source=DATABASE addon=… sample#db_size=8945836.0bytes sample#active-connections=3
//	       → db_size (Sample 8945836 bytes), active-connections (Sample 3), source DATABASE
//	heroku logplex         Error L10 (output buffer overflow): 500 messages dropped since …
//	       → logplex.dropped (Counter 500), no source
//	heroku web.1           Error R14 (Memory quota exceeded)
//	       → dyno.error.R14 (Counter 1), source web.1
//
// # Metric pairs
//
// The message is read as logfmt: space-separated key=value pairs, values
// optionally double-quoted with backslash escapes. Quoted values and tokens
// that start with a quote are never taken for metric pairs, so
// `msg="count#x=1"` counts nothing. Anywhere in a line:
//
//   - count#name=N is a Counter; a bare count#name counts 1.
//   - measure#name=V and the legacy measure.name=V are a Measure.
//   - sample#name=V is a Sample.
//   - measure=name val=V [units=U] (l2met's old form, and the labs runtime
//     metrics until 2013) is a Measure, from an app and from Heroku alike: the
//     line says measure, and the dashboards of that time read memory_rss.median
//     and load_avg_5m.perc95. (The current runtime form, sample#memory_rss, is
//     a Sample; the two forms never ran side by side.)
//
// A value is a decimal number, optionally signed, with an optional exponent
// (-3, .5, 12.5, 1.5e3), followed by an optional unit of letters or '%'
// (12ms, 21.22MB, 348836pages, 99.5%). NaN, Inf, out-of-range and malformed
// values are rejected: the rest of the line is still used, and Parse returns a
// *ParseError that counts them. Names keep their characters as written
// (active-connections, load_avg_1m).
//
// # Heroku's own lines
//
//   - Router lines (APP-NAME heroku, PROCID router) give router.connect and
//     router.service (Measure, ms), router.bytes (Measure, bytes), a Counter
//     of 1 for the status class (router.status.2xx …) and one for the error
//     code (router.error.H12 …). Empty fields (`dyno= connect= service=
//     bytes=` on H14) are skipped without error. Router 2.0 lines
//     (`fwd=1.2.3.4` unquoted, `protocol=http2.0 tls=true tls_version=tls1.3`)
//     parse alike, plus a Counter router.protocol.http1.1 or
//     router.protocol.http2.0 per request; the legacy router's
//     protocol=https (a scheme) and tls fields count nothing. Inputs without a
//     syslog header (Fir's OTLP log records) recognise router lines by their
//     content with IsRouterLine and pass APP-NAME heroku, PROCID router.
//   - Logplex's `Error L10 (output buffer overflow): N messages dropped …`
//     (heroku, logplex) gives logplex.dropped, a Counter of N with an empty
//     source: the loss is drain-wide, not a dyno's.
//   - `Error R14 (…)` and other error codes from a dyno (heroku, web.1) give
//     dyno.error.R14, a Counter of 1 with the dyno as source.
//
// # Sources
//
// A measurement's source is, in order: the line's source= pair (the old
// runtime form heroku.<app id>.<dyno>.<uuid> is reduced to the dyno name); for
// router lines, the dyno= field, or "router" when it is empty; otherwise the
// syslog PROCID (web.1, heroku-postgres); empty for bare lines. The syslog
// HOSTNAME is never used (on syslog drains it holds the drain token). The
// measurement's Time is Line.Time.
//
// # Allocation and bounds
//
// Parse appends to a caller-provided slice and interns names, sources and units
// in a table of at most MaxInterned strings, so steady-state parsing allocates
// nothing. Past MaxInterned distinct strings, new ones are allocated per use
// (and counted in Stats.InternOverflow) while the table keeps serving the
// strings it holds; a restarted Parser starts afresh. Names, units and
// sources are bounded by MaxNameLen, MaxUnitLen and MaxSourceLen, and one
// line yields at most MaxPerLine measurements; each bound, when hit, is a
// rejection counted in Stats.
package l2met
