package outlet

import (
	"cmp"
	"context"
	"fmt"
	"sync"

	"github.com/dynometrics/dynometrics/internal/aggregate"
)

// Stats are what Base counts for every outlet; each backend's Stats embeds
// them. The metric tags name the self-metrics (see internal/selfmetric),
// under worker.outlet.<name>.
type Stats struct {
	Buckets     int64      `metric:"-"`                 // buckets written (including those after Close; a volume)
	ClosedDrops int64      `metric:"closed_drops,drop"` // buckets written after Close, dropped
	Queue       QueueStats `metric:""`
}

// Base is the skeleton every remote outlet is built on: it serializes
// Write, encodes each bucket through the backend's function, pushes the
// batches onto a Queue (PushBucket) and drops, counts and reports buckets
// written after Close. Backends keep only their encoding and protocol.
// Safe for concurrent use.
type Base struct {
	name string
	q    *Queue

	mu     sync.Mutex // serializes Write and guards closed, stats and the backend's encoder
	closed bool
	stats  Stats
}

// NewBase returns a Base named name (the name Bucket.Done hears) sending
// through s with the queue tuning q.
func NewBase(name string, s Sender, q QueueConfig) *Base {
	q.Name = cmp.Or(q.Name, name)
	return &Base{name: name, q: NewQueue(s, q)}
}

// Write counts b and, unless the outlet is closed, calls encode with the
// lock held (so the backend's encoder needs no lock of its own) and queues
// the batches it returns. After Close, or when encode fails, nothing of b
// is sent and b.Done learns why (an error wrapping ErrDropped); a bucket
// dropped after Close is counted in ClosedDrops, an encoding failure is the
// backend's to count.
func (o *Base) Write(b *aggregate.Bucket, encode func(b *aggregate.Bucket) ([]Batch, error)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stats.Buckets++
	if o.closed {
		o.stats.ClosedDrops++
		o.settle(b, fmt.Errorf("%s: %w: outlet closed", o.name, ErrDropped))
		return
	}
	batches, err := encode(b)
	if err != nil {
		o.settle(b, fmt.Errorf("%s: %w: %w", o.name, ErrDropped, err))
		return
	}
	PushBucket(o.q, o.name, b, batches)
}

func (o *Base) settle(b *aggregate.Bucket, err error) {
	if b.Done != nil {
		b.Done(o.name, err)
	}
}

// Close stops accepting buckets and delivers what is queued until ctx ends;
// see Queue.Close.
func (o *Base) Close(ctx context.Context) error {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	return o.q.Close(ctx)
}

// Stats returns the skeleton's counters and the queue's; read, when not
// nil, is called with the lock held so that the backend can copy its
// encoder's counters consistently.
func (o *Base) Stats(read func()) Stats {
	o.mu.Lock()
	st := o.stats
	if read != nil {
		read()
	}
	o.mu.Unlock()
	st.Queue = o.q.Stats()
	return st
}
