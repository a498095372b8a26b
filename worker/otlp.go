package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/dynometrics/dynometrics/internal/appauth"
	"github.com/dynometrics/dynometrics/internal/input/otlp"
)

// buildOTLP serves the OTLP/HTTP receiver (a Fir telemetry drain) on PORT
// beside the drain, with the drain's credentials (apps: its keyring in
// multi-app mode).
func (w *worker) buildOTLP(apps *appauth.Keyring) error {
	attrs, err := w.cfg.Fir.Attributes()
	if err != nil {
		return err
	}
	names, err := otlp.ParseDynoNames(w.cfg.Fir.DynoNames)
	if err != nil {
		return fmt.Errorf("config: FIR_DYNO_NAMES=%w", err)
	}
	if w.otlp, err = otlp.New(otlp.Config{
		Sink: w.agg, User: w.cfg.Drain.User, Password: w.cfg.Drain.Password, InsecureNoAuth: w.cfg.Drain.InsecureNoAuth, Apps: apps, AppStats: w.apps,
		SourceAttributes: attrs, DynoNames: names, Logger: w.log, Now: w.opt.now, Budget: w.budget,
	}); err != nil {
		return err
	}
	w.otlp.Register(w.mux)
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
