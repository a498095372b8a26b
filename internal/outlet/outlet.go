// Package outlet holds what every outlet shares: the Outlet interface the
// worker hands flushed buckets to, and the bounded, retrying delivery Queue each
// outlet (Librato, Prometheus remote write) sends its encoded batches through.
package outlet

import (
	"context"
	"errors"
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
}

// Sender sends one batch. Its error decides what the Queue does next:
// nil means accepted; an error wrapping ErrPermanent drops the batch (counted
// and logged); an error wrapping ErrUnauthorized keeps the batch and retries
// (logged at most once per interval); any other error is retried with backoff.
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
