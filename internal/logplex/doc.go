// Package logplex reads what Logplex and syslog senders write: RFC 6587
// octet-counted (and newline-delimited) frames, the syslog header of Heroku's
// drain messages (RFC 5424 without STRUCTURED-DATA) and of RFC 5424 syslog
// messages (with STRUCTURED-DATA), and the text lines of `heroku logs` and
// Platform API log sessions.
//
// An HTTPS drain body (Content-Type application/logplex-1) holds frames like
// these, each length counting the message and its trailing LF:
//
//	92 <190>1 2024-05-01T12:00:00.200000+00:00 host app web.1 - count#req=1 measure#db.latency=4ms
//	245 <158>1 2024-05-01T12:00:00.123456+00:00 host heroku router - at=info method=GET path="/" host=ex.herokuapp.com request_id=5d1a2b3c-0000-4c1d-9e8f-0123456789ab fwd="1.2.3.4" dyno=web.1 connect=0ms service=12ms status=200 bytes=512 protocol=https
//
// A syslog drain sends the same framing with RFC 5424 messages whose HOSTNAME
// is the drain token and which carry STRUCTURED-DATA:
//
//	117 <14>1 2024-05-01T12:00:08.5Z d.2b0d3a6b-1111-2222-3333-444455556666 app web.1 - - count#req=1 measure#db.latency=4ms
//
// A log session streams text lines:
//
//	2024-05-01T12:00:00.123456+00:00 app[web.1]: count#req=1
//
// Use a Scanner to split a body or stream into messages (it skips malformed
// frames and resynchronises, see Scanner), then ParseMessage (syslog),
// ParseText (text lines) or ParseAny (either, or a bare line) to split each
// into a Header and the MSG that the l2met package turns into measurements.
// The Scanner reuses one buffer and the parsers return slices of their input,
// so the steady state allocates nothing.
//
// The HOSTNAME of a syslog drain message is the drain's secret token: it is
// returned in Header.Hostname but never appears in an error of this package.
package logplex
