// Package drain is the worker's HTTPS log drain: an http.Handler for
// POST /logs (Logplex's HTTP drain protocol) and GET /health.
//
// Logplex POSTs bodies of octet-counted syslog messages without
// STRUCTURED-DATA, with Basic auth taken from the drain URL:
//
//	POST /logs HTTP/1.1
//	Authorization: Basic dXNlcjpwYXNz
//	Content-Type: application/logplex-1
//	Logplex-Msg-Count: 2
//	Logplex-Frame-Id: 09C557EAFCFB6CF2740EE62F62971098
//
//	92 <190>1 2024-05-01T12:00:00.200000+00:00 host app web.1 - count#req=1 measure#db.latency=4ms
//	83 <190>1 2024-05-01T12:00:00.300000+00:00 host app web.2 - sample#queue.depth=7
//
// The Handler answers within milliseconds and parses asynchronously: it reads
// the body into a pooled buffer, queues it on a bounded queue served by a few
// goroutines (each with its own input.Session), and answers
//
//   - 204 when the body was queued, or when its Logplex-Frame-Id was already
//     accepted within the de-duplication window (a retry);
//   - 401 with WWW-Authenticate on missing or wrong credentials;
//   - 413 when the body exceeds Config.MaxBodyBytes;
//   - 503 with Retry-After when the queue is full, when the budget of bytes
//     being read (Config.Budget, shared with the worker's other HTTP servers;
//     bytes are taken as they arrive, never from Content-Length) is
//     exhausted, or the Handler is closing, so that Logplex retries the
//     same frame instead of losing it; in multi-app
//     mode (Config.Apps) also when the body's app holds its share of a
//     queue at least half full, so that one app's burst leaves the others
//     room (Stats.AppShare).
//
// Server serves every path (the drain's and whatever shares its mux) so that
// an answer written before the body was read to its end (401, 404, 413,
// 503…) closes the connection and ends its read deadline at once: a client
// trickling a body it will never get accepted does not hold a connection.
// Every body must arrive within BodyTimeout of its headers, whatever its
// size. Server bounds the connections (DefaultMaxConns) and closes, while one
// waits for a slot, idle keep-alive connections and those still sending
// headers SlowHeaderGrace after they were accepted (slowloris);
// ReadHeaderTimeout bounds header time. Every refusal is counted in Stats or
// ServerStats.
//
// Close drains the queue into the input.Sink before returning: nothing that was
// answered 2xx is lost on shutdown.
package drain
