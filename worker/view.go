package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/view"
)

// The live view's HTTP server limits (its own address, -view).
const (
	viewReadHeaderTimeout = 10 * time.Second
	viewWriteTimeout      = 30 * time.Second
	viewIdleTimeout       = 2 * time.Minute
)

// viewOptions are the command line's and tests' settings of the live view.
type viewOptions struct {
	view         string       // -view ADDR: serve the view there; "" means not
	viewListener net.Listener // tests: serve the view here instead of on -view's address
}

// liveView is the worker's part of the live view.
type liveView struct {
	view       *view.History
	viewServer *http.Server // -view's own server; nil without -view
}

// buildView sets up the live view when -view ADDR is given or VIEW_PASSWORD
// is set: the history becomes a viewer of every merged bucket; with
// VIEW_PASSWORD and PORT the page is also served at / on PORT, beside the
// drain, behind Basic auth. VIEW_PASSWORD protects -view's address too.
func (w *worker) buildView() error {
	onPort := w.cfg.ViewPassword != "" && w.server != nil
	if w.opt.view == "" && w.opt.viewListener == nil && !onPort {
		return nil
	}
	h, err := view.New(view.Config{
		Resolution: w.cfg.MetricsResolution, Window: w.cfg.ViewWindow,
		MaxPoints: w.cfg.ViewMaxPoints, MaxSeries: w.cfg.ViewMaxSeries, Logger: w.log,
	})
	if err != nil {
		return fmt.Errorf("view (VIEW_WINDOW, VIEW_MAX_POINTS, VIEW_MAX_SERIES): %w", err)
	}
	w.view = h
	w.viewers = append(w.viewers, h.Write)
	handler := h.Handler(view.HandlerConfig{User: w.cfg.ViewUser, Password: w.cfg.ViewPassword, Budget: w.budget})
	if onPort {
		w.mux.Handle("/", handler)
	}
	if w.opt.view != "" || w.opt.viewListener != nil {
		if w.cfg.ViewPassword == "" && !loopback(w.opt.view) {
			w.log.Warn("the live view on -view has no password: anyone who reaches the address sees the metrics (set VIEW_USER and VIEW_PASSWORD)", "addr", w.opt.view)
		}
		w.viewServer = &http.Server{
			Handler: drain.CutBodies(handler, drain.BodyTimeout), ReadHeaderTimeout: viewReadHeaderTimeout, WriteTimeout: viewWriteTimeout, IdleTimeout: viewIdleTimeout,
			ErrorLog: slog.NewLogLogger(w.log.Handler(), slog.LevelWarn),
		}
	}

	s := selfMetrics{w.reg}
	st := func() view.Stats { return h.Stats() }
	s.gauge("worker.view.series", func() int64 { return int64(st().Series) })
	s.gauge("worker.view.values", func() int64 { return st().Values })
	return nil // worker.view.dropped and .busy: dropCounters (viewDrops)
}

// viewDrops lists the live view's drop counters, read from st.
func viewDrops(st func() view.Stats) []dropCounter {
	return []dropCounter{
		{metric: "worker.view.dropped", field: "view.Stats.DroppedSeriesLimit",
			also: []string{"view.Stats.DroppedConflict", "view.Stats.DroppedPeriod", "view.Stats.DroppedOld", "view.Stats.DroppedUnsafe"},
			read: func() int64 {
				x := st()
				return x.DroppedSeriesLimit + x.DroppedConflict + x.DroppedPeriod + x.DroppedOld + x.DroppedUnsafe
			}},
		{metric: "worker.view.evicted", field: "view.Stats.Evicted", read: func() int64 { return st().Evicted }},
		{metric: "worker.view.busy", field: "view.Stats.Busy", read: func() int64 { return st().Busy }},
		{metric: "worker.view.failed_logins", field: "view.Stats.FailedLogins", read: func() int64 { return st().FailedLogins }},
		{metric: "worker.view.logins_refused", field: "view.Stats.LoginsRefused", read: func() int64 { return st().LoginsRefused }},
	}
}

// loopback reports whether addr listens on a loopback address only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// startView listens on -view's address, prints the view's URL and serves it
// until stopView.
func (w *worker) startView(start func(func() error)) error {
	if w.viewServer == nil {
		return nil
	}
	l := w.opt.viewListener
	if l == nil {
		var err error
		if l, err = net.Listen("tcp", w.opt.view); err != nil {
			return fmt.Errorf("view: listen on -view %s: %w", w.opt.view, err)
		}
	}
	w.log.Info("live view", "url", "http://"+urlHost(l.Addr())+"/")
	start(func() error {
		if err := w.viewServer.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("view: %w", err)
		}
		return nil
	})
	return nil
}

// urlHost is the host:port to put in the printed URL: the unspecified
// address (":8080") is shown as localhost.
func urlHost(a net.Addr) string {
	t, ok := a.(*net.TCPAddr)
	if !ok || t.IP == nil || t.IP.IsUnspecified() {
		if ok {
			return fmt.Sprintf("localhost:%d", t.Port)
		}
		return a.String()
	}
	return t.String()
}

// stopView closes the view's own server. The page's requests are short, so
// Shutdown returns quickly.
func (w *worker) stopView(ctx context.Context) error {
	if w.viewServer == nil {
		return nil
	}
	if err := w.viewServer.Shutdown(ctx); err != nil {
		return fmt.Errorf("view server: %w", err)
	}
	return nil
}
