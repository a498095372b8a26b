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
