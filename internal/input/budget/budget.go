// Package budget bounds the memory of HTTP request bodies being read and
// decoded at once, across every server of the worker that reads them (the
// HTTPS drain, the OTLP receiver, the live view's API). Bytes are taken from
// the budget as they arrive, never reserved from a declared Content-Length,
// so a client that declares 4 MiB and sends 10 bytes holds 10 bytes:
//
//	b := budget.New(64 << 20)
//	r := b.Reader(req.Body)
//	defer r.Release()
//	body, err := io.ReadAll(r) // errors.Is(err, budget.ErrExhausted): answer 503 with Retry-After
//
// A request that would take the budget past its bound fails and is counted
// (Stats.Refused); what it took is given back at once.
package budget

import (
	"errors"
	"io"
	"sync/atomic"
)

// Default is the bound the worker uses: the bytes of request bodies being
// read, inflated and decoded at once on PORT and -view (see
// docs/hardening.md for what the worker's memory is made of).
const Default = 64 << 20

// ErrExhausted is returned when taking bytes would exceed the budget.
var ErrExhausted = errors.New("budget: request bytes in flight exhausted, retry later")

// Budget is a bound on bytes in flight. A nil *Budget has no bound. Safe for
// concurrent use.
type Budget struct {
	max     int64
	used    atomic.Int64
	peak    atomic.Int64
	refused atomic.Uint64
}

// Stats are a Budget's counters.
type Stats struct {
	Max     int64  // the bound
	Used    int64  // bytes taken now
	Peak    int64  // the most bytes taken at once
	Refused uint64 // takes refused (each one request answered 503)
}

// New returns a Budget of max bytes (max <= 0 means Default).
func New(max int64) *Budget {
	if max <= 0 {
		max = Default
	}
	return &Budget{max: max}
}

// Take takes n bytes, or none and reports false when that would exceed the
// bound (counted in Stats.Refused).
func (b *Budget) Take(n int64) bool {
	if b == nil || n <= 0 {
		return true
	}
	var u int64
	for {
		old := b.used.Load()
		if u = old + n; u > b.max {
			b.refused.Add(1)
			return false
		}
		if b.used.CompareAndSwap(old, u) {
			break
		}
	}
	for p := b.peak.Load(); u > p && !b.peak.CompareAndSwap(p, u); p = b.peak.Load() {
	}
	return true
}

// Release gives back n bytes taken before.
func (b *Budget) Release(n int64) {
	if b != nil && n > 0 {
		b.used.Add(-n)
	}
}

// Stats returns the counters.
func (b *Budget) Stats() Stats {
	if b == nil {
		return Stats{}
	}
	return Stats{Max: b.max, Used: b.used.Load(), Peak: b.peak.Load(), Refused: b.refused.Load()}
}

// Reader returns a reader of r that takes every byte it returns from b.
// Call Release when the bytes it read are no longer held.
func (b *Budget) Reader(r io.Reader) *Reader {
	return &Reader{r: r, b: b}
}

// Reader reads through a Budget; its Take charges other memory of the same
// request (inflated bytes, decoded messages) to it. Not safe for
// concurrent use.
type Reader struct {
	r     io.Reader
	b     *Budget
	taken int64
	full  bool
}

// Read reads from the underlying reader and takes what it read; past the
// budget it returns ErrExhausted, then always (the request is to be refused).
func (r *Reader) Read(p []byte) (int, error) {
	if r.full {
		return 0, ErrExhausted
	}
	n, err := r.r.Read(p)
	if !r.Take(int64(n)) {
		r.full = true
		return 0, ErrExhausted
	}
	return n, err
}

// Take charges n more bytes of the request to the budget; false: exhausted.
func (r *Reader) Take(n int64) bool {
	if !r.b.Take(n) {
		return false
	}
	if r.b != nil {
		r.taken += max(n, 0)
	}
	return true
}

// Taken returns the bytes taken through r and not released.
func (r *Reader) Taken() int64 { return r.taken }

// Release gives back everything taken through r. It may be called more than
// once.
func (r *Reader) Release() {
	r.b.Release(r.taken)
	r.taken = 0
}

// Wrap returns a reader of src that charges what it reads to r (the
// inflated bytes of a compressed body read through r).
func (r *Reader) Wrap(src io.Reader) io.Reader { return &charged{src: src, r: r} }

type charged struct {
	src io.Reader
	r   *Reader
}

func (c *charged) Read(p []byte) (int, error) {
	n, err := c.src.Read(p)
	if !c.r.Take(int64(n)) {
		return 0, ErrExhausted
	}
	return n, err
}
