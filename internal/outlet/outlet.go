// Package outlet holds what every outlet shares: the Outlet interface the
// worker hands flushed buckets to, and the bounded, retrying delivery Queue each
// outlet (Librato, Prometheus remote write) sends its encoded batches through.
package outlet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
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
	// to learn that a bucket reached an outlet; see Ack.
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

// Ack returns the Done callbacks for the n batches one bucket was encoded
// into: done is called once, after all n settled, with nil when every batch
// was accepted, else with the first error. With n == 0 done is called at
// once with nil (nothing to send). done may be nil: Ack then returns nil
// callbacks.
func Ack(n int, done func(err error)) func(err error) {
	if done == nil {
		return nil
	}
	if n <= 0 {
		done(nil)
		return nil
	}
	var (
		mu    sync.Mutex
		left  = n
		first error
	)
	return func(err error) {
		mu.Lock()
		if err != nil && first == nil {
			first = err
		}
		left--
		last, e := left == 0, first
		mu.Unlock()
		if last {
			done(e)
		}
	}
}

// PushBucket pushes the batches bucket b was encoded into onto q, so that
// b.Done (when set) learns, once, whether all of them reached the receiver,
// under the outlet's name.
func PushBucket(q *Queue, name string, b *aggregate.Bucket, batches []Batch) {
	var done func(error)
	if b.Done != nil {
		done = Ack(len(batches), func(err error) { b.Done(name, err) })
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
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(math.MaxInt64/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Post sends body to endpoint with header (cloned) through client. A request
// that cannot be built is refused for good (ErrPermanent). A transport error
// comes back without its *url.Error wrapper, which repeats the whole URL: the
// query of an endpoint may hold a key, so the caller names the endpoint in
// its own, redacted form.
func Post(ctx context.Context, client *http.Client, endpoint string, header http.Header, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, ErrPermanent
	}
	req.Header = header.Clone()
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, err
	}
	return resp, nil
}
