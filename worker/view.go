package main

import (
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
	onPort := w.cfg.View.Password != "" && w.server != nil
	if w.opt.view == "" && w.opt.viewListener == nil && !onPort {
		return nil
	}
	h, err := view.New(view.Config{
		Resolution: w.cfg.Buckets.Resolution, Window: w.cfg.View.Window,
		MaxPoints: w.cfg.View.MaxPoints, MaxSeries: w.cfg.View.MaxSeries, Logger: w.log,
	})
	if err != nil {
		return fmt.Errorf("view (VIEW_WINDOW, VIEW_MAX_POINTS, VIEW_MAX_SERIES): %w", err)
	}
	w.view = h
	w.viewers = append(w.viewers, h.Write)
	handler := h.Handler(view.HandlerConfig{User: w.cfg.View.User, Password: w.cfg.View.Password, Budget: w.budget})
	if onPort {
		w.mux.Handle("/", handler)
	}
	if w.opt.view != "" || w.opt.viewListener != nil {
		if w.cfg.View.Password == "" && !loopback(w.opt.view) {
			w.log.Warn("the live view on -view has no password: anyone who reaches the address sees the metrics (set VIEW_USER and VIEW_PASSWORD)", "addr", w.opt.view)
		}
		w.viewServer = &http.Server{
			Handler: drain.CutBodies(handler, drain.BodyTimeout), ReadHeaderTimeout: viewReadHeaderTimeout, WriteTimeout: viewWriteTimeout, IdleTimeout: viewIdleTimeout,
			ErrorLog: slog.NewLogLogger(w.log.Handler(), slog.LevelWarn),
		}
	}

	return nil
}

// loopback reports whether addr listens on a loopback address only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	return err == nil && (host == "localhost" || ip != nil && ip.IsLoopback())
}

// urlHost is the host:port to put in the printed URL: the unspecified
// address (":8080") is shown as localhost.
func urlHost(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok && (t.IP == nil || t.IP.IsUnspecified()) {
		return fmt.Sprintf("localhost:%d", t.Port)
	}
	return a.String()
}
