// Package syslog is the worker's syslog listener: Heroku syslog drains
// (syslog+tls://host:port) and other RFC 5424 senders over TCP, or TLS when a
// certificate and key are configured. Frames are octet counted or newline
// delimited (logplex.Scanner handles both):
//
//	100 <190>1 2024-05-01T12:00:00.200000+00:00 d.7f3a1c app web.1 - - count#req=1 measure#db.latency=4ms
//	<190>1 2024-05-01T12:00:00.300000+00:00 d.7f3a1c app web.2 - [meta x="1"] sample#queue.depth=7
//
// Each connection is read by its own goroutine through an input.Processor.
// Measurements reach the Sink whenever a read would block. An octet-counted
// frame is only complete for logplex.Scanner once the first byte after it
// (the next frame, or the end of the connection) has arrived, as the Scanner
// checks that the length ends at a frame boundary: on a quiet connection the
// last octet-counted frame waits for the next one, the idle timeout or Close.
// Connections are bounded (Config.MaxConns), closed after Config.IdleTimeout
// without data, and asked to finish on Close.
package syslog
