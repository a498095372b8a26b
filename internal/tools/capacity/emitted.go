package main

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// parseEmission reads one line the worker's emitter printed ("at=metrics
// count#worker.redis.commands=12 sample#worker.redis.leases=4 …") into
// name → value. ok is false for any other line (logs, the console outlet's
// buckets). Pairs that are not count# or sample# self-metrics, or whose
// value is not a number, are skipped.
func parseEmission(line string) (m map[string]float64, ok bool) {
	if !strings.HasPrefix(line, "at=metrics ") {
		return nil, false
	}
	m = make(map[string]float64)
	for _, f := range strings.Fields(line[len("at=metrics "):]) {
		kind, rest, _ := strings.Cut(f, "#")
		name, val, ok := strings.Cut(rest, "=")
		if kind != "count" && kind != "sample" || !ok || name == "" {
			continue
		}
		x, err := strconv.ParseFloat(val, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		m[name] = x
	}
	return m, true
}

// emissions collects a worker's self-metrics per emission. The emitter
// prints just before every wall-clock multiple of the interval (less
// emitter.AlignLead), so an emission is filed under the multiple it
// precedes: index k holds the changes over the interval that ends just
// before k × interval. Safe for concurrent use.
type emissions struct {
	interval, lead time.Duration
	now            func() time.Time

	mu   sync.Mutex
	byK  map[int64]map[string]float64
	part []byte // an unfinished line
}

func newEmissions(interval, lead time.Duration) *emissions {
	return &emissions{interval: interval, lead: lead, now: time.Now, byK: make(map[int64]map[string]float64)}
}

// Write takes the worker's output (stdout and stderr both), line by line.
func (e *emissions) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.part = append(e.part, p...)
	for {
		line, rest, ok := bytes.Cut(e.part, []byte("\n"))
		if !ok {
			break
		}
		e.part = rest
		m, ok := parseEmission(string(line))
		if !ok {
			continue // a log line: testproc.Proc keeps those
		}
		iv := e.interval.Nanoseconds()
		k := (e.now().UnixNano() + e.lead.Nanoseconds() + iv/2) / iv // the multiple it precedes
		if e.byK[k] == nil {
			e.byK[k] = make(map[string]float64)
		}
		for name, v := range m {
			e.byK[k][name] += v
		}
	}
	if len(e.part) > 1<<20 { // a longer line is not an emission
		e.part = nil
	}
	return len(p), nil
}

// at returns the self-metrics of emission k (nil when none arrived).
func (e *emissions) at(k int64) map[string]float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.byK[k]
}
