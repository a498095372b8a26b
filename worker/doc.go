// Command worker is the dynometrics worker: it consumes a Heroku-style app's
// log stream and turns it into per-dyno metrics.
//
// Inputs, any number at once: an HTTPS log drain (POST /logs, Logplex
// framing) and the OTLP/HTTP receiver of Fir telemetry drains (POST /v1/logs,
// POST /v1/metrics) on PORT; a syslog drain (SYSLOG_ADDR); the app's own
// Platform API log sessions (HEROKU_API_KEY, HEROKU_APP_NAME); or stdin
// (-stdin). It parses the l2met conventions, Heroku's router, runtime and
// add-on lines and OTLP metrics, aggregates them into time buckets per metric
// and per dyno, and sends every bucket to each configured outlet: OTLP/HTTP
// (OTEL_EXPORTER_OTLP_*), Prometheus remote write (REMOTE_WRITE_URL), Librato
// (LIBRATO_TOKEN), or, with none configured, stdout. With REDIS_URL the
// workers of an app share their state in Redis (internal/store): each bucket
// is sent once, whole, whichever worker received its lines, and nothing is
// lost at a restart. The live view (-view ADDR, or VIEW_PASSWORD on PORT)
// charts the recent buckets per dyno and for the whole app, with a JSON API.
// With DRAIN_SECRET one worker serves many apps (multi-app mode, with or
// without REDIS_URL): each app drains with its own derived password, the app
// is part of every series, and the drain queue and the series bound are
// shared fairly per app. The worker's own health goes out as emitter lines
// every EMITTER_INTERVAL (per app too in multi-app mode).
//
// All configuration comes from the environment; `worker -h` lists every
// variable with its default. Every variable is checked before anything
// starts: a configuration error exits with status 2 and names the variable,
// its value (never a secret's) and what is accepted. On SIGTERM or SIGINT
// (and at the end of stdin with -stdin) the worker stops its inputs (with
// -stdin it first reads to the end of its input), flushes every open bucket,
// sends what is queued, and exits within SHUTDOWN_TIMEOUT.
//
// Usage:
//
//	webapp | worker -stdin                               # local: print per-dyno buckets
//	webapp | worker -stdin -view 127.0.0.1:8080          # … and chart them at http://127.0.0.1:8080/
//	PORT=8080 DRAIN_USER=u DRAIN_PASSWORD=p worker      # HTTPS and OTLP drains on :8080
//	DRAIN_SECRET=… DRAIN_HOST=h worker -drain-url billing # multi-app: billing's drain URL, heroku lines
//	worker -h                                           # flags and every variable
//	worker -version                                     # from the build information
package main
