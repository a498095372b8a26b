// Package inputtest holds test helpers shared by the input packages: a Sink
// that records what it is given, in a form that compares exactly.
package inputtest

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/dynometrics/dynometrics/internal/metric"
)

// Recorder is an input.Sink that keeps a copy of every measurement. Safe for
// concurrent use.
type Recorder struct {
	mu    sync.Mutex
	ms    []metric.Measurement
	added chan struct{}
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{added: make(chan struct{}, 1)} }

// Add records a copy of ms.
func (r *Recorder) Add(ms []metric.Measurement) {
	r.mu.Lock()
	r.ms = append(r.ms, ms...)
	r.mu.Unlock()
	select {
	case r.added <- struct{}{}:
	default:
	}
}

// Len returns the number of measurements recorded.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ms)
}

// Lines returns the recorded measurements formatted by Format, in arrival order.
func (r *Recorder) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.ms))
	for i, m := range r.ms {
		out[i] = Format(m)
	}
	return out
}

// Sorted returns Lines sorted, for inputs whose order is not deterministic.
func (r *Recorder) Sorted() []string {
	l := r.Lines()
	slices.Sort(l)
	return l
}

// WaitLen waits until at least n measurements were recorded or d passed, and
// reports whether they were.
func (r *Recorder) WaitLen(n int, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if r.Len() >= n {
			return true
		}
		select {
		case <-r.added:
		case <-deadline.C:
			return r.Len() >= n
		}
	}
}

// Format renders a measurement as
// "2024-05-01T12:00:00.2Z web.1 count req=1" or "… measure db.latency=4ms".
func Format(m metric.Measurement) string {
	return fmt.Sprintf("%s %s %s %s=%s%s", m.Time.UTC().Format(time.RFC3339Nano), m.Source, m.Kind,
		m.Name, strconv.FormatFloat(m.Value, 'f', -1, 64), m.Unit)
}
