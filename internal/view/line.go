package view

import "math"

// line is the history of one source of one metric: a ring of points at
// consecutive bucket indexes (bucket start / period), the newest at head, a
// fixed number of float64 values per point. A bucket in which the source had
// no value holds NaN, so no time is stored per point. The ring grows by
// doubling up to its maximum, so a short-lived source costs little.
type line struct {
	newest int64     // bucket index of the newest point; meaningful when n > 0
	n      int       // points held, gaps included
	head   int       // ring slot of the newest point
	vals   []float64 // cap(ring) * stride values
	stride uint8     // values per point
}

// slots returns the ring's capacity in points.
func (l *line) slots(stride int) int { return len(l.vals) / stride }

// put stores v (stride values) at bucket index idx, keeping at most max
// points. A point older than max points before the newest is ignored.
func (l *line) put(idx int64, v []float64, max int) {
	st := len(v)
	l.stride = uint8(st)
	switch {
	case l.n == 0 || idx-l.newest >= int64(max):
		l.grow(1, max, st)
		l.n, l.head, l.newest = 1, 0, idx
	case idx > l.newest:
		gap := int(idx - l.newest)
		l.grow(min(l.n+gap, max), max, st)
		c := l.slots(st)
		for k := 1; k < gap && k <= c; k++ {
			l.fill(l.at(-k, c), st)
		}
		l.head = l.at(-gap, c)
		l.n = min(l.n+gap, max)
		l.newest = idx
	default:
		off := int(l.newest - idx)
		if off >= max {
			return
		}
		if off >= l.n {
			l.grow(off+1, max, st)
			c := l.slots(st)
			for p := l.n; p < off; p++ {
				l.fill(l.at(p, c), st)
			}
			l.n = off + 1
		}
		copy(l.vals[l.at(off, l.slots(st))*st:], v)
		return
	}
	copy(l.vals[l.head*st:], v)
}

// at returns the ring slot of the point off places older than the newest
// (negative: newer) in a ring of c slots.
func (l *line) at(off, c int) int {
	return ((l.head-off)%c + c) % c
}

// fill marks a slot as a bucket without a value.
func (l *line) fill(slot, st int) {
	for i := range st {
		l.vals[slot*st+i] = math.NaN()
	}
}

// grow makes room for n points (n <= limit), keeping the points held.
func (l *line) grow(n, limit, st int) {
	c := l.slots(st)
	if n <= c {
		return
	}
	nc := min(max(n, 2*c, 4), limit)
	vals := make([]float64, nc*st)
	// Lay the held points out oldest first, the newest at slot l.n-1.
	for p := 0; p < l.n; p++ {
		copy(vals[(l.n-1-p)*st:(l.n-p)*st], l.vals[l.at(p, c)*st:l.at(p, c)*st+st])
	}
	l.vals, l.head = vals, max(l.n-1, 0)
}

// each calls f for every point that has a value, oldest first, with its
// bucket index and its values, skipping points older than from. A point has
// a value when its last value (the count, for measures) is not NaN.
func (l *line) each(from int64, f func(idx int64, v []float64)) {
	if l.n == 0 {
		return
	}
	st := int(l.stride)
	c := l.slots(st)
	for p := l.n - 1; p >= 0; p-- {
		idx := l.newest - int64(p)
		if idx < from {
			continue
		}
		s := l.at(p, c)
		v := l.vals[s*st : s*st+st]
		if math.IsNaN(v[st-1]) {
			continue
		}
		f(idx, v)
	}
}
