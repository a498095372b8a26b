package outlet

// API CONTRACT (written first so that outlets can be built in parallel). The
// queue owner replaces the bodies; signatures change only by agreement.

import (
	"context"
	"log/slog"
	"time"
)

// QueueConfig bounds and tunes a Queue. Zero values mean the documented defaults.
type QueueConfig struct {
	Name         string           // outlet name for logs and errors, e.g. "librato"
	MaxBatches   int              // queued batches before the oldest are dropped (default 1000)
	MaxAge       time.Duration    // batches whose Time is older are dropped (default 2h: Librato refuses older measure_time)
	Concurrency  int              // requests in flight at once (default 2)
	MinBackoff   time.Duration    // first retry delay (default 500ms), doubled per failure with jitter
	MaxBackoff   time.Duration    // retry delay cap (default 30s)
	AuthLogEvery time.Duration    // credentials errors are logged at most this often (default 1m)
	Logger       *slog.Logger     // default slog.Default()
	Now          func() time.Time // clock for the age bound; default time.Now
}

// QueueStats are cumulative counts since the Queue started, plus the current depth.
type QueueStats struct {
	Sent, SentMeasurements       int64 // batches and measurements accepted by the receiver
	Failed                       int64 // send attempts that failed (each retry counts)
	Dropped, DroppedMeasurements int64 // batches and measurements given up: permanent error, queue full, too old, shutdown
	Depth                        int   // batches waiting now
	LastLatency                  time.Duration
}

// Queue delivers batches through a Sender: in order, a few at a time, retrying
// with exponential backoff and jitter until accepted, bounded by count and age.
// Safe for concurrent use.
type Queue struct{}

// NewQueue returns a running Queue that sends through s. Call Close to stop it.
func NewQueue(s Sender, cfg QueueConfig) *Queue { panic("unimplemented") }

// Push queues b. When the queue is full the oldest batch is dropped (counted and logged).
func (q *Queue) Push(b Batch) { panic("unimplemented") }

// Close stops accepting batches and keeps sending until the queue is empty or ctx
// ends; what is left then is dropped, counted, and reported in the error.
func (q *Queue) Close(ctx context.Context) error { panic("unimplemented") }

// Stats returns the queue's counters.
func (q *Queue) Stats() QueueStats { panic("unimplemented") }
