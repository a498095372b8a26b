// Package logplex reads what Logplex and syslog senders write: RFC 6587
// octet-counted (and newline-delimited) frames, the syslog header of Heroku's
// drain messages (RFC 5424 without STRUCTURED-DATA) and of RFC 5424 syslog
// messages (with STRUCTURED-DATA), and the text lines of `heroku logs` and
// Platform API log sessions.
package logplex
