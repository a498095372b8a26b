package main

import (
	"fmt"
	"net/url"

	"github.com/dynometrics/dynometrics/internal/otlpout"
)

// buildOTLPOutlet adds the OTLP metrics outlet when an OTEL_EXPORTER_OTLP_*
// endpoint is set; its self-metrics (worker.outlet.otlp.*) are its Stats'.
func (w *worker) buildOTLPOutlet(tags map[string]string) error {
	cfg := w.cfg
	if !cfg.OTLP.Enabled() {
		return nil
	}
	oc, err := cfg.OTLP.Config()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	// One point per series (a measure is one histogram point); the worker
	// never sets MaxPointsPerRequest, so requests hold the default.
	perRequest := otlpout.DefaultMaxPointsPerRequest
	oc.Prefix, oc.Tags, oc.Queue, oc.Logger, oc.Now = cfg.Metrics.Prefix, tags, w.queueFor(1, perRequest), w.log, w.opt.now
	o, err := otlpout.New(oc)
	if err != nil {
		return fmt.Errorf("OTLP outlet: %w", err)
	}
	w.outlets = append(w.outlets, named(otlpout.QueueName, o, o.Stats))
	w.log.Info("OTLP outlet", "endpoint", o.Endpoint(), "protocol", oc.Protocol,
		"compression", oc.Compression, "temporality", oc.Temporality.String(), "headers", len(oc.Headers))
	if u, err := url.Parse(oc.Endpoint); err == nil && u.Port() == "4317" {
		w.log.Warn("OTLP endpoint on port 4317, OTLP/gRPC's port: this outlet speaks OTLP/HTTP, usually on 4318")
	}
	return nil
}
