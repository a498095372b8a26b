// Package throttle holds the worker's one rate-limited logger: a message
// that can repeat as long as its cause lasts (a receiver down, Redis
// unreachable, a client sending garbage) is logged at most once per interval
// per kind, while a self-metric counts every occurrence.
//
//	l := throttle.New(logger, time.Minute, nil)
//	if l.Warn("refused", "receiver refused a batch", "status", 400) { … }
//	redis.SetLogger(l.Printf) // via RedisLogger: go-redis's messages too
package throttle

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// DefaultEvery is the interval New uses for every <= 0.
const DefaultEvery = time.Minute

// Logger logs each kind of message at most once per interval. The kind is a
// caller-chosen key (by convention the message itself). The zero value is
// not usable; call New. Safe for concurrent use.
type Logger struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	next map[string]time.Time // per kind: the first time it may be logged again
}

// New returns a Logger writing to log (slog.Default() when nil) at most
// once per every (DefaultEvery when <= 0) per kind, by the clock now
// (time.Now when nil).
func New(log *slog.Logger, every time.Duration, now func() time.Time) *Logger {
	log = cmp.Or(log, slog.Default())
	if every <= 0 {
		every = DefaultEvery
	}
	if now == nil {
		now = time.Now
	}
	return &Logger{log: log, every: every, now: now, next: make(map[string]time.Time)}
}

// Allow reports whether a message of this kind may be logged now, and if so
// starts its next interval.
func (l *Logger) Allow(kind string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next[kind]) {
		return false
	}
	l.next[kind] = now.Add(l.every)
	return true
}

// Log logs msg with args at level when a message of this kind was not
// logged in the last interval, and reports whether it did.
func (l *Logger) Log(level slog.Level, kind, msg string, args ...any) bool {
	if !l.Allow(kind) {
		return false
	}
	l.log.Log(context.Background(), level, msg, args...)
	return true
}

// Warn is Log at slog.LevelWarn, the message being its own kind.
func (l *Logger) Warn(msg string, args ...any) bool { return l.Log(slog.LevelWarn, msg, msg, args...) }

// Error is Log at slog.LevelError, the message being its own kind.
func (l *Logger) Error(msg string, args ...any) bool {
	return l.Log(slog.LevelError, msg, msg, args...)
}

// RedisLogger adapts l to go-redis's logger interface (redis.SetLogger takes
// a value with Printf(ctx, format, v...)): its messages are logged as
// warnings under the attribute client=redis, at most once per interval per
// format string, so that an unreachable server does not print a dial error
// for every connection attempt.
type RedisLogger struct{ L *Logger }

// Printf implements go-redis's internal.Logging.
func (r RedisLogger) Printf(ctx context.Context, format string, v ...any) {
	if !r.L.Allow("redis: " + format) {
		return
	}
	r.L.log.Log(ctx, slog.LevelWarn, fmt.Sprintf(format, v...), "client", "redis",
		"note", fmt.Sprintf("logged at most once per %s", r.L.every))
}
