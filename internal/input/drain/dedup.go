package drain

import "time"

// dedup remembers the Logplex-Frame-Ids of accepted bodies, bounded by count
// (the oldest id is forgotten when a new one arrives at the limit) and by age.
// Not safe for concurrent use: the Handler guards it with its mutex.
type dedup struct {
	age     time.Duration
	ids     map[string]struct{}
	ring    []dedupEntry // insertion order, oldest at head
	head, n int
	evicted uint64 // ids forgotten by the count bound before they aged out
}

type dedupEntry struct {
	id string
	at time.Time
}

func newDedup(size int, age time.Duration) *dedup {
	return &dedup{age: age, ids: make(map[string]struct{}, size), ring: make([]dedupEntry, size)}
}

// seen reports whether id was added less than age ago (and within the last
// size ids).
func (d *dedup) seen(id string, now time.Time) bool {
	d.expire(now)
	_, ok := d.ids[id]
	return ok
}

// add remembers id, which must not be remembered already.
func (d *dedup) add(id string, now time.Time) {
	if len(d.ring) == 0 {
		return
	}
	if d.n == len(d.ring) {
		d.evicted++
		d.pop()
	}
	d.ring[(d.head+d.n)%len(d.ring)] = dedupEntry{id: id, at: now}
	d.n++
	d.ids[id] = struct{}{}
}

func (d *dedup) expire(now time.Time) {
	for d.n > 0 && now.Sub(d.ring[d.head].at) >= d.age {
		d.pop()
	}
}

func (d *dedup) pop() {
	delete(d.ids, d.ring[d.head].id)
	d.ring[d.head] = dedupEntry{}
	d.head = (d.head + 1) % len(d.ring)
	d.n--
}
