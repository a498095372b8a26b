package main

import (
	"github.com/dynometrics/dynometrics/emitter"
	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/console"
	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/librato"
	"github.com/dynometrics/dynometrics/internal/otlpout"
	"github.com/dynometrics/dynometrics/internal/outlet"
	"github.com/dynometrics/dynometrics/internal/promwrite"
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
	s.counter("worker.input.own_lines", u(w.proc.OwnLines))

	if w.drain != nil {
		d := func() drain.Stats { return w.drain.Stats() }
		s.counter("worker.drain.requests", u(func() uint64 { return d().Requests }))
		s.counter("worker.drain.accepted", u(func() uint64 { return d().Accepted }))
		s.gauge("worker.drain.queued", func() int64 { return int64(d().Queued) })
		s.gauge("worker.drain.pending", func() int64 { return int64(d().Pending) })
	}
	w.otlpMetrics(s)
	s.gauge("worker.http.bytes_in_flight", func() int64 { return w.budget.Stats().Used })
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
	for _, c := range w.dropCounters() {
		if err := s.r.Register(c.metric, statCounter(c.read)); err != nil {
			return err // a name listed twice
		}
	}

	a := func() aggregate.Stats { return w.agg.Stats() }
	s.counter("worker.aggregate.added", u(func() uint64 { return a().Added }))
	s.counter("worker.aggregate.dropped", u(func() uint64 {
		st := a()
		return st.DroppedSeriesLimit + st.DroppedSourceShare + st.DroppedOpenLimit + st.DroppedFuture +
			st.DroppedOld + st.DroppedConflict + st.DroppedInvalid + st.DroppedOutOfRange
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
	s.counter(p+"batches_dropped.queue_full", func() int64 { return q().DroppedFull })
	s.counter(p+"batches_dropped.expired", func() int64 { return q().DroppedExpired })
	s.counter(p+"batches_dropped.refused", func() int64 { return q().DroppedPermanent })
	s.counter(p+"batches_dropped.shutdown", func() int64 { return q().DroppedShutdown })
	s.gauge(p+"queue_depth", func() int64 { return int64(q().Depth) })
	s.gauge(p+"latency_ms", func() int64 { return q().LastLatency.Milliseconds() })
}

// dropCounter is one way the worker drops, refuses or cuts short something it
// was given, and the self-metric (a count# per interval) that counts it.
type dropCounter struct {
	metric string       // self-metric name
	field  string       // the statistic it reads, "package.Type.Field", for TestEveryDropPathCounted
	also   []string     // other statistics it sums, when it counts several (worker.view.dropped)
	read   func() int64 // cumulative count
}

// dropCounters lists every drop path of the configured components. Each is
// also logged where it happens (at most once per interval when it can
// repeat); the counters are what the README's Limits table names.
func (w *worker) dropCounters() []dropCounter {
	var cs []dropCounter
	add := func(metric, field string, read func() int64) {
		cs = append(cs, dropCounter{metric: metric, field: field, read: read})
	}
	u := func(v uint64) int64 { return int64(v) }

	p := w.proc.Stats
	add("worker.input.rejected_lines", "input.Stats.RejectedLines", func() int64 { return u(p().RejectedLines) })
	add("worker.input.rejected_pairs", "input.Stats.RejectedPairs", func() int64 { return u(p().RejectedPairs) })
	add("worker.input.malformed_frames", "input.Stats.MalformedFrames", func() int64 { return u(p().MalformedFrames) })
	add("worker.input.bad_headers", "input.Stats.BadHeaders", func() int64 { return u(p().BadHeaders) })
	add("worker.input.overlong_lines", "input.Stats.OverlongLines", func() int64 { return u(p().OverlongLines) })
	add("worker.input.broken_streams", "input.Stats.BrokenStreams", func() int64 { return u(p().BrokenStreams) })

	if w.drain != nil {
		d := w.drain.Stats
		add("worker.drain.duplicates", "drain.Stats.Duplicates", func() int64 { return u(d().Duplicates) })
		add("worker.drain.unauthorized", "drain.Stats.Unauthorized", func() int64 { return u(d().Unauthorized) })
		add("worker.drain.too_large", "drain.Stats.TooLarge", func() int64 { return u(d().TooLarge) })
		add("worker.drain.queue_full", "drain.Stats.QueueFull", func() int64 { return u(d().QueueFull) })
		add("worker.drain.busy", "drain.Stats.Busy", func() int64 { return u(d().Busy) })
		add("worker.drain.closing", "drain.Stats.Closing", func() int64 { return u(d().Closing) })
		add("worker.drain.read_errors", "drain.Stats.ReadErrors", func() int64 { return u(d().ReadErrors) })
		add("worker.drain.long_frame_ids", "drain.Stats.LongFrameIDs", func() int64 { return u(d().LongFrameIDs) })
		add("worker.drain.dedup_evicted", "drain.Stats.DedupEvicted", func() int64 { return u(d().DedupEvicted) })
		add("worker.drain.count_differs", "drain.Stats.CountDiffers", func() int64 { return u(d().CountDiffers) })
		add("worker.drain.shared_duplicates", "drain.Stats.SharedDups", func() int64 { return u(d().SharedDups) })
	}
	if w.server != nil {
		v := w.server.Stats
		add("worker.drain.saturated", "drain.ServerStats.Saturated", func() int64 { return u(v().Saturated) })
		add("worker.drain.idle_closed", "drain.ServerStats.IdleClosed", func() int64 { return u(v().IdleClosed) })
		add("worker.drain.slow_closed", "drain.ServerStats.SlowClosed", func() int64 { return u(v().SlowClosed) })
		add("worker.drain.header_too_large", "drain.ServerStats.HeaderTooLarge", func() int64 { return u(v().HeaderTooLarge) })
		add("worker.drain.bad_requests", "drain.ServerStats.BadRequests", func() int64 { return u(v().BadRequests) })
	}
	if w.otlp != nil {
		cs = append(cs, otlpDrops(w.otlp.Stats)...)
	}
	if w.syslog != nil {
		y := w.syslog.Stats
		add("worker.syslog.saturated", "syslog.Stats.Saturated", func() int64 { return u(y().Saturated) })
		add("worker.syslog.idle_timeouts", "syslog.Stats.IdleTimeouts", func() int64 { return u(y().IdleTimeouts) })
		add("worker.syslog.silent_closed", "syslog.Stats.SilentClosed", func() int64 { return u(y().SilentClosed) })
		add("worker.syslog.reclaimed", "syslog.Stats.Reclaimed", func() int64 { return u(y().Reclaimed) })
		add("worker.syslog.handshake_errors", "syslog.Stats.HandshakeErrors", func() int64 { return u(y().HandshakeErrors) })
		add("worker.syslog.read_errors", "syslog.Stats.ReadErrors", func() int64 { return u(y().ReadErrors) })
	}
	if w.tailer != nil {
		l := w.tailer.Stats
		add("worker.logsession.session_errors", "logsession.Stats.SessionErrors", func() int64 { return u(l().SessionErrors) })
		add("worker.logsession.unauthorized", "logsession.Stats.Unauthorized", func() int64 { return u(l().Unauthorized) })
		add("worker.logsession.stream_errors", "logsession.Stats.StreamErrors", func() int64 { return u(l().StreamErrors) })
		add("worker.logsession.idle_timeouts", "logsession.Stats.IdleTimeouts", func() int64 { return u(l().IdleTimeouts) })
	}

	a := w.agg.Stats
	add("worker.aggregate.late", "aggregate.Stats.Late", func() int64 { return u(a().Late) })
	add("worker.aggregate.dropped.series_limit", "aggregate.Stats.DroppedSeriesLimit", func() int64 { return u(a().DroppedSeriesLimit) })
	add("worker.aggregate.dropped.source_share", "aggregate.Stats.DroppedSourceShare", func() int64 { return u(a().DroppedSourceShare) })
	add("worker.aggregate.dropped.open_limit", "aggregate.Stats.DroppedOpenLimit", func() int64 { return u(a().DroppedOpenLimit) })
	add("worker.aggregate.dropped.future", "aggregate.Stats.DroppedFuture", func() int64 { return u(a().DroppedFuture) })
	add("worker.aggregate.dropped.old", "aggregate.Stats.DroppedOld", func() int64 { return u(a().DroppedOld) })
	add("worker.aggregate.dropped.conflict", "aggregate.Stats.DroppedConflict", func() int64 { return u(a().DroppedConflict) })
	add("worker.aggregate.dropped.invalid", "aggregate.Stats.DroppedInvalid", func() int64 { return u(a().DroppedInvalid) })
	add("worker.aggregate.dropped.out_of_range", "aggregate.Stats.DroppedOutOfRange", func() int64 { return u(a().DroppedOutOfRange) })
	add("worker.aggregate.sketch_saturated", "aggregate.Stats.SketchSaturated", func() int64 { return u(a().SketchSaturated) })

	for _, o := range w.outlets {
		prefix := "worker.outlet." + o.name + "."
		switch o := o.Outlet.(type) {
		case *librato.Outlet:
			add(prefix+"series_skipped", "librato.Stats.Skipped", func() int64 { return o.Stats().Skipped })
			add(prefix+"fields_dropped", "librato.Stats.Dropped", func() int64 { return o.Stats().Dropped })
			add(prefix+"collisions", "librato.Stats.Collisions", func() int64 { return o.Stats().Collisions })
		case *promwrite.Outlet:
			add(prefix+"collisions", "promwrite.Stats.Collisions", func() int64 { return o.Stats().Collisions })
			add(prefix+"late", "promwrite.Stats.Late", func() int64 { return o.Stats().Late })
			add(prefix+"unknown_kind", "promwrite.Stats.Unknown", func() int64 { return o.Stats().Unknown })
			add(prefix+"totals_evicted", "promwrite.Stats.Evicted", func() int64 { return o.Stats().Evicted })
			add(prefix+"closed_drops", "promwrite.Stats.ClosedDrops", func() int64 { return o.Stats().ClosedDrops })
			add(prefix+"rejected", "promwrite.Stats.Rejected", func() int64 { return o.Stats().Rejected })
		case *otlpout.Outlet:
			cs = append(cs, otlpOutletDrops(prefix, o.Stats)...)
		case *console.Outlet:
			add(prefix+"write_errors", "console.Outlet.Stats.writeErrors", func() int64 { _, e := o.Stats(); return e })
		}
	}
	if w.shared != nil {
		cs = append(cs, sharedDrops(w.shared.st.Stats)...)
	}
	if w.view != nil {
		cs = append(cs, viewDrops(w.view.Stats)...)
	}
	return cs
}

// otlpOutletDrops lists the OTLP outlet's drop counters, read from st.
func otlpOutletDrops(prefix string, st func() otlpout.Stats) []dropCounter {
	c := func(metric, field string, read func(otlpout.Stats) int64) dropCounter {
		return dropCounter{metric: prefix + metric, field: "otlpout.Stats." + field, read: func() int64 { return read(st()) }}
	}
	return []dropCounter{
		c("rejected_requests", "Rejected", func(x otlpout.Stats) int64 { return x.Rejected }),
		c("partial_rejected_points", "PartialDropped", func(x otlpout.Stats) int64 { return x.PartialDropped }),
		c("late_series", "Late", func(x otlpout.Stats) int64 { return x.Late }),
		c("evicted_series", "Evicted", func(x otlpout.Stats) int64 { return x.Evicted }),
		c("encode_errors", "EncodeErrors", func(x otlpout.Stats) int64 { return x.EncodeErrors }),
		c("unknown_kind", "Unknown", func(x otlpout.Stats) int64 { return x.Unknown }),
		c("closed_drops", "ClosedDrops", func(x otlpout.Stats) int64 { return x.ClosedDrops }),
	}
}
