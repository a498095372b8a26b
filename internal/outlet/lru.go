package outlet

import "container/list"

// LRU holds at most a fixed number of values and forgets the least recently
// used one when a new key arrives at the bound. The outlets keep their
// per-series state in it (running totals, last timestamps, cumulative
// histograms), so that memory stays bounded however many series come and
// go. Not safe for concurrent use.
type LRU[K comparable, V any] struct {
	m       map[K]*list.Element // each holds a *lruEntry[K, V]
	order   list.List           // most recent first
	max     int
	clone   func(K) K
	evicted int64
}

type lruEntry[K comparable, V any] struct {
	key K
	v   V
}

// NewLRU returns an empty LRU of at most bound values (at least 1). clone,
// when not nil, copies a key before it is kept, so that a key built from
// strings borrowed from a bucket does not pin the bucket's memory.
func NewLRU[K comparable, V any](bound int, clone func(K) K) *LRU[K, V] {
	return &LRU[K, V]{m: make(map[K]*list.Element), max: max(bound, 1), clone: clone}
}

// Get returns the value for k, creating a zero one (and evicting the least
// recently used when full) if needed, and marks it most recent. The pointer
// is valid until the value is evicted.
func (l *LRU[K, V]) Get(k K) (v *V, created bool) {
	if e := l.m[k]; e != nil {
		l.order.MoveToFront(e)
		return &e.Value.(*lruEntry[K, V]).v, false
	}
	if len(l.m) >= l.max {
		delete(l.m, l.order.Remove(l.order.Back()).(*lruEntry[K, V]).key)
		l.evicted++
	}
	if l.clone != nil {
		k = l.clone(k)
	}
	n := &lruEntry[K, V]{key: k}
	l.m[k] = l.order.PushFront(n)
	return &n.v, true
}

// Peek returns the value for k without marking it used, or nil.
func (l *LRU[K, V]) Peek(k K) *V {
	if e := l.m[k]; e != nil {
		return &e.Value.(*lruEntry[K, V]).v
	}
	return nil
}

// Len returns how many values are kept.
func (l *LRU[K, V]) Len() int { return len(l.m) }

// Evicted returns how many values were forgotten at the bound.
func (l *LRU[K, V]) Evicted() int64 { return l.evicted }
