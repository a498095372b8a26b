// Package outlet holds what every outlet shares: the Outlet interface the
// worker hands flushed buckets to; Base, the skeleton each remote outlet
// (Librato, Prometheus remote write, OTLP) is built on, with its bounded,
// retrying delivery Queue (which drops the oldest when full, or with
// QueueConfig.Wait, as the shared state uses it, first waits for room:
// backpressure); HTTPSender, the one HTTP client side (status
// classes, Retry-After, redaction, no credentials through a redirect to
// another origin); and LRU, the bounded per-series state. A backend keeps
// only its encoding, naming and protocol specifics.
package outlet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
)

// Outlet receives every flushed bucket. Write must not block for long: it
// encodes the bucket and queues it for delivery. Close stops accepting buckets
// and tries to deliver everything queued until ctx ends; whatever is still
// queued then is counted as dropped and reported in the returned error.
// Implementations are safe for concurrent use.
type Outlet interface {
	Write(b *aggregate.Bucket)
	Close(ctx context.Context) error
}

// Batch is one encoded request, ready to send.
type Batch struct {
	Body []byte    // the request body, already encoded (and compressed, if the wire format says so)
	N    int       // measurements (or samples) in Body, for counting what is sent or dropped
	Time time.Time // the oldest bucket start in Body, for the queue's age bound

	// Done, when set, is called once by the Queue when the batch is settled:
	// with nil when the receiver accepted it, with an error wrapping
	// ErrDropped when it was dropped (the error says why). It is called
	// without the queue's lock held and must not block. Shared state uses it
	// to learn that a bucket reached an outlet; see PushBucket.
	Done func(err error)

	// Valid, when set, is asked before each attempt to send the batch:
	// false withdraws it unsent (Done gets an error wrapping ErrWithdrawn).
	// Shared state uses it to stop a worker whose lease moved from sending
	// what the new holder sends. It must not block.
	Valid func() bool
}

// ErrWithdrawn is wrapped by the error Batch.Done receives for a batch
// withdrawn unsent because Batch.Valid said so: not a drop (its owner
// delivers it elsewhere, and counts it).
var ErrWithdrawn = errors.New("batch withdrawn")

// ErrDropped is wrapped by the error Batch.Done receives for a dropped batch.
var ErrDropped = errors.New("batch dropped")

// Sender sends one batch. Its error decides what the Queue does next:
// nil means accepted; an error wrapping ErrPermanent drops the batch (counted
// and logged); an error wrapping ErrUnauthorized keeps the batch and retries
// (logged at most once per interval); any other error is retried with backoff,
// waiting at least the delay of a RetryAfterError it wraps (see RetryAfter).
// Errors must never contain credentials.
type Sender interface {
	Send(ctx context.Context, b *Batch) error
}

// ErrPermanent marks a batch the receiver refused for good (HTTP 400 and other
// 4xx except 401, 403, 429): retrying would fail the same way.
var ErrPermanent = errors.New("permanent failure")

// ErrUnauthorized marks a credentials failure (HTTP 401/403): the data is kept
// and retried, since credentials may be fixed without losing it.
var ErrUnauthorized = errors.New("unauthorized")

// RetryAfterError is a transient failure whose receiver said how long to wait
// (HTTP Retry-After on 429 or 503). The Queue waits at least Delay, capped at
// QueueConfig.MaxRetryAfter, before the next attempt; like any backoff delay,
// no new batch starts in the meantime.
type RetryAfterError struct {
	Err   error
	Delay time.Duration
}

// Error implements error.
func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.Delay)
}

// Unwrap returns the failure.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter wraps err so that the Queue waits at least d before retrying.
// With d <= 0 it returns err unchanged.
func RetryAfter(err error, d time.Duration) error {
	if d <= 0 {
		return err
	}
	return &RetryAfterError{Err: err, Delay: d}
}

// PushBucket pushes the batches bucket b was encoded into onto q, so that
// b.Done (when set) learns, once, whether all of them reached the receiver,
// under the outlet's name: after all settled, with nil when every batch was
// accepted, else with the first error; at once with nil when there is none.
func PushBucket(q *Queue, name string, b *aggregate.Bucket, batches []Batch) {
	if b.Done != nil && len(batches) == 0 {
		b.Done(name, nil) // nothing to send
	}
	var done func(error)
	if b.Done != nil {
		var mu sync.Mutex
		left, first := len(batches), error(nil)
		done = func(err error) {
			mu.Lock()
			first = cmp.Or(first, err)
			left--
			last, e := left == 0, first
			mu.Unlock()
			if last {
				b.Done(name, e)
			}
		}
	}
	for _, bt := range batches {
		bt.Done = done
		bt.Valid = b.Valid
		q.Push(bt)
	}
}

// ParseRetryAfter reads an HTTP Retry-After header value: delay-seconds
// ("120") or an HTTP-date, taken relative to now. It returns 0 for an empty,
// malformed or past value.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(min(max(s, 0), int64(math.MaxInt64/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
