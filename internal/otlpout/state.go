package otlpout

import "strings"

// seriesKey identifies one input series across buckets.
type seriesKey struct {
	name, unit, source string
}

// lru holds at most max values and forgets the least recently used one when
// a new key arrives at the limit. Not safe for concurrent use.
type lru[V any] struct {
	m       map[seriesKey]*node[V]
	list    node[V] // sentinel: list.next is the most recent, list.prev the least
	max     int
	evicted int64
}

type node[V any] struct {
	key        seriesKey
	v          V
	prev, next *node[V]
}

func newLRU[V any](max int) *lru[V] {
	l := &lru[V]{m: make(map[seriesKey]*node[V]), max: max}
	l.list.next, l.list.prev = &l.list, &l.list
	return l
}

// get returns the value for k, creating a zero one (and evicting the least
// recently used when full) if needed, and marks it most recent.
func (l *lru[V]) get(k seriesKey) (v *V, created bool) {
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
	k.name, k.unit, k.source = strings.Clone(k.name), strings.Clone(k.unit), strings.Clone(k.source)
	n := &node[V]{key: k}
	l.m[k] = n
	l.pushFront(n)
	return &n.v, true
}

func (l *lru[V]) len() int { return len(l.m) }

func (l *lru[V]) unlink(n *node[V]) {
	n.prev.next = n.next
	n.next.prev = n.prev
	n.prev, n.next = nil, nil
}

func (l *lru[V]) pushFront(n *node[V]) {
	n.prev = &l.list
	n.next = l.list.next
	l.list.next.prev = n
	l.list.next = n
}
