package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dynometrics/dynometrics/internal/input/otlp"
)

// otlpSourceAttributes splits OTLP_SOURCE_ATTRIBUTES: comma-separated
// attribute names, spaces around them ignored, empty items refused.
func otlpSourceAttributes(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		if k == "" || len(k) > 255 {
			return nil, errors.New("an empty or over-long attribute name")
		}
		out = append(out, k)
	}
	return out, nil
}

// buildOTLP serves the OTLP/HTTP receiver (a Fir telemetry drain) on PORT
// beside the drain, with the drain's credentials.
func (w *worker) buildOTLP() error {
	attrs, err := otlpSourceAttributes(w.cfg.OTLPSourceAttributes)
	if err != nil {
		return err
	}
	names, err := otlp.ParseDynoNames(w.cfg.FirDynoNames)
	if err != nil {
		return fmt.Errorf("config: FIR_DYNO_NAMES=%w", err)
	}
	r, err := otlp.New(otlp.Config{
		Sink: w.agg, User: w.cfg.DrainUser, Password: w.cfg.DrainPassword, InsecureNoAuth: w.cfg.DrainInsecureNoAuth,
		SourceAttributes: attrs, DynoNames: names, Logger: w.log, Now: w.opt.now, Budget: w.budget,
	})
	if err != nil {
		return err
	}
	w.otlp = r
	r.Register(w.mux)
	w.log.Info("OTLP/HTTP receiver (Fir telemetry drains) on PORT", "paths", otlp.LogsPath+" "+otlp.MetricsPath,
		"source_attributes", strings.Join(attrs, ","), "fir_dyno_names", names.String())
	return nil
}

// closeOTLP waits until every request the receiver accepted reached the
// aggregator. Call it after the HTTP server stopped.
func (w *worker) closeOTLP(ctx context.Context) error {
	if w.otlp == nil {
		return nil
	}
	return w.otlp.Close(ctx)
}

// otlpMetrics registers the receiver's volume counters and gauges; its drop
// counters are in dropCounters (otlpDrops).
func (w *worker) otlpMetrics(s selfMetrics) {
	if w.otlp == nil {
		return
	}
	st := func() otlp.Stats { return w.otlp.Stats() }
	u := func(f func(otlp.Stats) uint64) func() int64 { return func() int64 { return int64(f(st())) } }
	s.counter("worker.otlp.requests", u(func(x otlp.Stats) uint64 { return x.Requests }))
	s.counter("worker.otlp.log_records", u(func(x otlp.Stats) uint64 { return x.LogRecords }))
	s.counter("worker.otlp.data_points", u(func(x otlp.Stats) uint64 { return x.DataPoints }))
	s.counter("worker.otlp.cumulative_resets", u(func(x otlp.Stats) uint64 { return x.CumulativeResets }))
	s.counter("worker.otlp.lines", u(func(x otlp.Stats) uint64 { return x.Input.Lines }))
	s.counter("worker.otlp.measurements", u(func(x otlp.Stats) uint64 { return x.Input.Measurements }))
	s.gauge("worker.otlp.queued", func() int64 { return int64(st().Queued) })
	s.gauge("worker.otlp.cumulative_series", func() int64 { return int64(st().CumulativeSeries) })
}

// otlpDrops lists the receiver's drop counters, read from st. A counter
// that sums several statistics names the others in also.
func otlpDrops(st func() otlp.Stats) []dropCounter {
	var cs []dropCounter
	c := func(metric, field string, read func(otlp.Stats) uint64, also ...string) {
		cs = append(cs, dropCounter{metric: metric, field: "otlp.Stats." + field, also: also,
			read: func() int64 { return int64(read(st())) }})
	}
	c("worker.otlp.unauthorized", "Unauthorized", func(x otlp.Stats) uint64 { return x.Unauthorized })
	c("worker.otlp.too_large", "TooLarge", func(x otlp.Stats) uint64 { return x.TooLarge + x.GzipBombs + x.TooManyMsgs })
	c("worker.otlp.too_many_messages", "TooManyMsgs", func(x otlp.Stats) uint64 { return x.TooManyMsgs })
	c("worker.otlp.gzip_bombs", "GzipBombs", func(x otlp.Stats) uint64 { return x.GzipBombs })
	c("worker.otlp.unsupported", "Unsupported", func(x otlp.Stats) uint64 { return x.Unsupported })
	c("worker.otlp.malformed", "Malformed", func(x otlp.Stats) uint64 { return x.Malformed })
	c("worker.otlp.too_deep", "TooDeep", func(x otlp.Stats) uint64 { return x.TooDeep })
	c("worker.otlp.busy", "Busy", func(x otlp.Stats) uint64 { return x.Busy })
	c("worker.otlp.queue_full", "QueueFull", func(x otlp.Stats) uint64 { return x.QueueFull + x.Closing }, "otlp.Stats.Closing")
	c("worker.otlp.rejected", "Rejected", func(x otlp.Stats) uint64 { return x.Rejected })
	c("worker.otlp.rejected_too_many", "TooMany", func(x otlp.Stats) uint64 { return x.TooMany })
	c("worker.otlp.rejected_attributes", "TooManyAtt", func(x otlp.Stats) uint64 { return x.TooManyAtt })
	c("worker.otlp.rejected_invalid", "Invalid", func(x otlp.Stats) uint64 { return x.Invalid })
	c("worker.otlp.rejected_negative", "Negative", func(x otlp.Stats) uint64 { return x.Negative })
	c("worker.otlp.rejected_start_after_time", "StartAfter", func(x otlp.Stats) uint64 { return x.StartAfter })
	c("worker.otlp.rejected_unsafe_names", "Unsafe", func(x otlp.Stats) uint64 { return x.Unsafe })
	c("worker.otlp.rejected_summaries", "Summaries", func(x otlp.Stats) uint64 { return x.Summaries })
	c("worker.otlp.skipped", "NonStringBodies", func(x otlp.Stats) uint64 {
		return x.NonStringBodies + x.NoValue + x.Unplaceable + x.CumulativeOutOfOrder + x.CumulativeSeriesDropped
	}, "otlp.Stats.NoValue", "otlp.Stats.Unplaceable", "otlp.Stats.CumulativeOutOfOrder")
	c("worker.otlp.cumulative_series_dropped", "CumulativeSeriesDropped", func(x otlp.Stats) uint64 { return x.CumulativeSeriesDropped })
	c("worker.otlp.rejected_lines", "Input.RejectedLines", func(x otlp.Stats) uint64 { return x.Input.RejectedLines })
	c("worker.otlp.rejected_pairs", "Input.RejectedPairs", func(x otlp.Stats) uint64 { return x.Input.RejectedPairs })
	c("worker.otlp.overlong_lines", "Input.OverlongLines", func(x otlp.Stats) uint64 { return x.Input.OverlongLines })
	return cs
}
