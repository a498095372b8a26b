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
		SourceAttributes: attrs, DynoNames: names, Logger: w.log, Now: w.opt.now,
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

// otlpMetrics registers the receiver's self-metrics.
func (w *worker) otlpMetrics(s selfMetrics) {
	if w.otlp == nil {
		return
	}
	st := func() otlp.Stats { return w.otlp.Stats() }
	u := func(f func(otlp.Stats) uint64) func() int64 { return func() int64 { return int64(f(st())) } }
	s.counter("worker.otlp.requests", u(func(x otlp.Stats) uint64 { return x.Requests }))
	s.counter("worker.otlp.unauthorized", u(func(x otlp.Stats) uint64 { return x.Unauthorized }))
	s.counter("worker.otlp.too_large", u(func(x otlp.Stats) uint64 { return x.TooLarge + x.GzipBombs + x.TooManyMsgs }))
	s.counter("worker.otlp.too_many_messages", u(func(x otlp.Stats) uint64 { return x.TooManyMsgs }))
	s.counter("worker.otlp.gzip_bombs", u(func(x otlp.Stats) uint64 { return x.GzipBombs }))
	s.counter("worker.otlp.unsupported", u(func(x otlp.Stats) uint64 { return x.Unsupported }))
	s.counter("worker.otlp.malformed", u(func(x otlp.Stats) uint64 { return x.Malformed }))
	s.counter("worker.otlp.too_deep", u(func(x otlp.Stats) uint64 { return x.TooDeep }))
	s.counter("worker.otlp.queue_full", u(func(x otlp.Stats) uint64 { return x.QueueFull + x.Closing }))
	s.counter("worker.otlp.log_records", u(func(x otlp.Stats) uint64 { return x.LogRecords }))
	s.counter("worker.otlp.data_points", u(func(x otlp.Stats) uint64 { return x.DataPoints }))
	s.counter("worker.otlp.rejected", u(func(x otlp.Stats) uint64 { return x.Rejected }))
	s.counter("worker.otlp.rejected_too_many", u(func(x otlp.Stats) uint64 { return x.TooMany }))
	s.counter("worker.otlp.rejected_attributes", u(func(x otlp.Stats) uint64 { return x.TooManyAtt }))
	s.counter("worker.otlp.rejected_invalid", u(func(x otlp.Stats) uint64 { return x.Invalid }))
	s.counter("worker.otlp.rejected_summaries", u(func(x otlp.Stats) uint64 { return x.Summaries }))
	s.counter("worker.otlp.skipped", u(func(x otlp.Stats) uint64 {
		return x.NonStringBodies + x.NoValue + x.Unplaceable + x.CumulativeOutOfOrder + x.CumulativeSeriesDropped
	}))
	s.counter("worker.otlp.cumulative_resets", u(func(x otlp.Stats) uint64 { return x.CumulativeResets }))
	s.counter("worker.otlp.cumulative_series_dropped", u(func(x otlp.Stats) uint64 { return x.CumulativeSeriesDropped }))
	s.counter("worker.otlp.lines", u(func(x otlp.Stats) uint64 { return x.Input.Lines }))
	s.counter("worker.otlp.measurements", u(func(x otlp.Stats) uint64 { return x.Input.Measurements }))
	s.counter("worker.otlp.rejected_pairs", u(func(x otlp.Stats) uint64 { return x.Input.RejectedPairs }))
	s.counter("worker.otlp.overlong_lines", u(func(x otlp.Stats) uint64 { return x.Input.OverlongLines }))
	s.gauge("worker.otlp.queued", func() int64 { return int64(st().Queued) })
	s.gauge("worker.otlp.cumulative_series", func() int64 { return int64(st().CumulativeSeries) })
}
