// Package syslog is the worker's syslog listener: Heroku syslog drains
// (syslog+tls://host:port) and other RFC 5424 senders over TCP, or TLS when a
// certificate and key are configured. Frames are octet counted or newline
// delimited (logplex.Scanner handles both):
//
//	100 <190>1 2024-05-01T12:00:00.200000+00:00 d.7f3a1c app web.1 - - count#req=1 measure#db.latency=4ms
//	<190>1 2024-05-01T12:00:00.300000+00:00 d.7f3a1c app web.2 - [meta x="1"] sample#queue.depth=7
//
// Each connection is read by its own goroutine through an input.Processor.
// Measurements reach the Sink whenever a read would block, and
// logplex.Scanner returns a frame without waiting for input after it when it
// can: an octet-counted frame ending in LF (as Heroku sends them) or a
// newline-delimited frame as soon as its last byte is read, an octet-counted
// frame without LF (rsyslog and other RFC 6587 senders) when it arrived whole
// in one read. So the last frame on a quiet connection reaches the Sink at
// once. Only a frame without LF whose message was split across reads (rare:
// a write larger than a TCP segment or TLS record) waits for the next frame,
// the idle timeout or Close, because the Scanner then reads the bytes after it
// to check that its length ends at a frame boundary (see logplex.Scanner).
// Connections are bounded (Config.MaxConns), closed when they send nothing
// within Config.FirstByteTimeout of being accepted or after Config.IdleTimeout
// without data, and asked to finish on Close. While a new connection waits for
// a slot, connections that received nothing for DefaultReclaimIdle are closed
// to make room (Stats.Reclaimed), so idle connections cannot lock the
// listener; their senders reconnect when they next have something to send.
package syslog
