package main

import (
	"github.com/dynometrics/dynometrics/emitter"
	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/outlet"
	metrics "github.com/rcrowley/go-metrics"
)

// statCounter is a read-only go-metrics Counter backed by a cumulative
// statistic of some component. The emitter prints a counter's change since its
// last emission, so a cumulative total becomes a per-interval count#.
type statCounter func() int64

func (f statCounter) Count() int64              { return f() }
func (f statCounter) Clear()                    {}
func (f statCounter) Dec(int64)                 {}
func (f statCounter) Inc(int64)                 {}
func (f statCounter) Snapshot() metrics.Counter { return metrics.CounterSnapshot(f()) }

// selfMetrics registers the worker's health in r: cumulative counters read
// from each component (printed as count# per interval) and current values
// (printed as sample#).
type selfMetrics struct{ r metrics.Registry }

func (s selfMetrics) counter(name string, f func() int64) {
	s.r.Register(name, statCounter(f))
}

func (s selfMetrics) gauge(name string, f func() int64) {
	s.r.Register(name, metrics.NewFunctionalGauge(f))
}

// buildEmitter registers the worker's self-metrics and builds the emitter that
// prints them to stdout, or to stderr when stdout carries the local outlet's
// buckets (EMITTER_INTERVAL, EMITTER_PREFIX, EMITTER_SOURCE): on Heroku both
// reach the log stream and they come back through the drain like any app
// line, with the worker's dyno as their source.
func (w *worker) buildEmitter() error {
	s := selfMetrics{w.reg}
	u := func(f func() uint64) func() int64 { return func() int64 { return int64(f()) } }

	p := func() input.Stats { return w.proc.Stats() }
	s.counter("worker.input.lines", u(func() uint64 { return p().Lines }))
	s.counter("worker.input.measurements", u(func() uint64 { return p().Measurements }))
	s.counter("worker.input.rejected_lines", u(func() uint64 { return p().RejectedLines }))
	s.counter("worker.input.rejected_pairs", u(func() uint64 { return p().RejectedPairs }))
	s.counter("worker.input.malformed_frames", u(func() uint64 { return p().MalformedFrames }))
	s.counter("worker.input.bad_headers", u(func() uint64 { return p().BadHeaders }))
	s.counter("worker.input.overlong_lines", u(func() uint64 { return p().OverlongLines }))
	s.counter("worker.input.own_lines", u(w.proc.OwnLines))

	if w.drain != nil {
		d := func() drain.Stats { return w.drain.Stats() }
		s.counter("worker.drain.requests", u(func() uint64 { return d().Requests }))
		s.counter("worker.drain.accepted", u(func() uint64 { return d().Accepted }))
		s.counter("worker.drain.duplicates", u(func() uint64 { return d().Duplicates }))
		s.counter("worker.drain.unauthorized", u(func() uint64 { return d().Unauthorized }))
		s.counter("worker.drain.too_large", u(func() uint64 { return d().TooLarge }))
		s.counter("worker.drain.queue_full", u(func() uint64 { return d().QueueFull }))
		s.gauge("worker.drain.queued", func() int64 { return int64(d().Queued) })
	}
	if w.syslog != nil {
		s.counter("worker.syslog.connections", u(func() uint64 { return w.syslog.Stats().Accepted }))
		s.gauge("worker.syslog.active", func() int64 { return int64(w.syslog.Stats().Active) })
	}
	if w.tailer != nil {
		s.counter("worker.logsession.sessions", u(func() uint64 { return w.tailer.Stats().Sessions }))
		s.counter("worker.logsession.errors", u(func() uint64 {
			st := w.tailer.Stats()
			return st.SessionErrors + st.StreamErrors
		}))
	}

	a := func() aggregate.Stats { return w.agg.Stats() }
	s.counter("worker.aggregate.added", u(func() uint64 { return a().Added }))
	s.counter("worker.aggregate.late", u(func() uint64 { return a().Late }))
	s.counter("worker.aggregate.dropped", u(func() uint64 {
		st := a()
		return st.DroppedSeriesLimit + st.DroppedFuture + st.DroppedOld + st.DroppedConflict + st.DroppedInvalid
	}))
	s.counter("worker.aggregate.series_flushed", u(func() uint64 { return a().SeriesFlushed }))
	s.gauge("worker.aggregate.open_series", func() int64 { return a().OpenSeries })
	s.counter("worker.aggregate.partial_timer_stats", u(w.intervals.count.Load))

	cfg, err := emitter.FromEnv()
	if err != nil {
		return err
	}
	cfg.Registry = w.reg
	cfg.Writer = w.opt.stdout
	if w.hasOutlet("console") && w.opt.stderr != nil {
		// stdout carries the buckets: keep the health lines apart.
		cfg.Writer = w.opt.stderr
	}
	cfg.Logger = w.log
	w.emitter, err = emitter.New(cfg)
	return err
}

// hasOutlet reports whether an outlet of that name is configured.
func (w *worker) hasOutlet(name string) bool {
	for _, o := range w.outlets {
		if o.name == name {
			return true
		}
	}
	return false
}

// outletMetrics registers the delivery counters of one outlet's queue.
func (w *worker) outletMetrics(name string, q func() outlet.QueueStats) {
	s := selfMetrics{w.reg}
	p := "worker.outlet." + name + "."
	s.counter(p+"batches_sent", func() int64 { return q().Sent })
	s.counter(p+"measurements_sent", func() int64 { return q().SentMeasurements })
	s.counter(p+"send_failures", func() int64 { return q().Failed })
	s.counter(p+"batches_dropped", func() int64 { return q().Dropped })
	s.counter(p+"measurements_dropped", func() int64 { return q().DroppedMeasurements })
	s.gauge(p+"queue_depth", func() int64 { return int64(q().Depth) })
	s.gauge(p+"latency_ms", func() int64 { return q().LastLatency.Milliseconds() })
}
