package store

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// Reasons a Redis step fails, as counted in Stats.Errors and logged. Any of
// them means "Redis unavailable": the data is kept and the step retried (or,
// after REDIS_FALLBACK_AFTER, sent from this worker); no error is ever read
// as a verdict ("duplicate", "late", "delivered").
const (
	ReasonAuth        = "auth"        // NOAUTH, WRONGPASS, NOPERM: credentials refused or rotated
	ReasonOOM         = "oom"         // OOM: maxmemory reached with a noeviction policy
	ReasonReadOnly    = "readonly"    // READONLY, MASTERDOWN: a replica, or a failover under way
	ReasonLoading     = "loading"     // LOADING, BUSY: the server is starting or stuck in a script
	ReasonTimeout     = "timeout"     // no answer within REDIS_TIMEOUT (OpTimeout)
	ReasonUnreachable = "unreachable" // connection refused, reset or closed
	ReasonWrongType   = "wrongtype"   // WRONGTYPE or an unexpected reply: a key holds something else
	ReasonOther       = "other"       // anything else
)

// reasons lists every reason, in Stats.Errors' order.
var reasons = [...]string{ReasonAuth, ReasonOOM, ReasonReadOnly, ReasonLoading, ReasonTimeout, ReasonUnreachable, ReasonWrongType, ReasonOther}

// Reasons returns every reason an error is counted under, for self-metrics.
func Reasons() []string { return reasons[:] }

// reasonOf classifies a Redis error.
func reasonOf(err error) int {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return 4
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), errors.Is(err, syscall.EPIPE):
		return 5
	}
	msg := err.Error()
	for _, p := range []struct {
		prefix string
		r      int
	}{
		{"NOAUTH", 0}, {"WRONGPASS", 0}, {"NOPERM", 0}, {"ERR invalid password", 0}, {"ERR AUTH", 0},
		{"OOM", 1}, {"READONLY", 2}, {"MASTERDOWN", 2}, {"LOADING", 3}, {"BUSY", 3}, {"WRONGTYPE", 6},
	} {
		if strings.HasPrefix(msg, p.prefix) || strings.Contains(msg, ": "+p.prefix) {
			return p.r
		}
	}
	if strings.Contains(msg, "unexpected type") || strings.Contains(msg, "malformed") || strings.Contains(msg, "do not match") {
		return 6
	}
	if strings.Contains(msg, "connection refused") || strings.Contains(msg, "connection reset") || strings.Contains(msg, "closed") {
		return 5
	}
	if strings.Contains(msg, "timeout") || strings.Contains(msg, "deadline") {
		return 4
	}
	return 7
}

// failed counts err under its reason and logs it (once per LogEvery per
// kind), with the reason; it returns the reason.
func (s *Store) failed(kind string, err error, msg string, args ...any) string {
	err = s.redact(err)
	r := reasonOf(err)
	s.stats.errors[r].Add(1)
	s.warn(kind, msg, append([]any{"reason", reasons[r], "err", err}, args...)...)
	return reasons[r]
}
