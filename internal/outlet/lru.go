package outlet

// LRU holds at most a fixed number of values and forgets the least recently
// used one when a new key arrives at the bound. The outlets keep their
// per-series state in it (running totals, last timestamps, cumulative
// histograms), so that memory stays bounded however many series come and
// go. Not safe for concurrent use.
type LRU[K comparable, V any] struct {
	m       map[K]*lruNode[K, V]
	list    lruNode[K, V] // sentinel: list.next is the most recent, list.prev the least
	max     int
	clone   func(K) K
	evicted int64
}

type lruNode[K comparable, V any] struct {
	key        K
	v          V
	prev, next *lruNode[K, V]
}

// NewLRU returns an empty LRU of at most bound values (at least 1). clone,
// when not nil, copies a key before it is kept, so that a key built from
// strings borrowed from a bucket does not pin the bucket's memory.
func NewLRU[K comparable, V any](bound int, clone func(K) K) *LRU[K, V] {
	l := &LRU[K, V]{m: make(map[K]*lruNode[K, V]), max: max(bound, 1), clone: clone}
	l.list.next, l.list.prev = &l.list, &l.list
	return l
}

// Get returns the value for k, creating a zero one (and evicting the least
// recently used when full) if needed, and marks it most recent. The pointer
// is valid until the value is evicted.
func (l *LRU[K, V]) Get(k K) (v *V, created bool) {
	if n := l.m[k]; n != nil {
		l.unlink(n)
		l.pushFront(n)
		return &n.v, false
	}
	if len(l.m) >= l.max {
		old := l.list.prev
		l.unlink(old)
		delete(l.m, old.key)
		l.evicted++
	}
	if l.clone != nil {
		k = l.clone(k)
	}
	n := &lruNode[K, V]{key: k}
	l.m[k] = n
	l.pushFront(n)
	return &n.v, true
}

// Peek returns the value for k without marking it used, or nil.
func (l *LRU[K, V]) Peek(k K) *V {
	if n := l.m[k]; n != nil {
		return &n.v
	}
	return nil
}

// Len returns how many values are kept.
func (l *LRU[K, V]) Len() int { return len(l.m) }

// Evicted returns how many values were forgotten at the bound.
func (l *LRU[K, V]) Evicted() int64 { return l.evicted }

func (l *LRU[K, V]) unlink(n *lruNode[K, V]) {
	n.prev.next = n.next
	n.next.prev = n.prev
	n.prev, n.next = nil, nil
}

func (l *LRU[K, V]) pushFront(n *lruNode[K, V]) {
	n.prev = &l.list
	n.next = l.list.next
	l.list.next.prev = n
	l.list.next = n
}
