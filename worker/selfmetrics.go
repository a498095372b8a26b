package main

import (
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"sync/atomic"

	"github.com/dynometrics/dynometrics/emitter"
	"github.com/dynometrics/dynometrics/internal/appstats"
	"github.com/dynometrics/dynometrics/internal/selfmetric"
	"github.com/dynometrics/dynometrics/internal/store"
	"github.com/dynometrics/dynometrics/internal/throttle"
	metrics "github.com/rcrowley/go-metrics"
)

// statsSource is one component's Stats, published under prefix: its
// fields' metric tags name the self-metrics (see internal/selfmetric).
type statsSource struct {
	prefix   string
	typ      reflect.Type
	register func(r metrics.Registry) error
}

func source[S any](prefix string, read func() S) statsSource {
	return statsSource{prefix, reflect.TypeFor[S](), func(r metrics.Registry) error { return selfmetric.Register(r, prefix, read) }}
}

// statsSources lists the Stats of every configured component.
func (w *worker) statsSources() []statsSource {
	ss := []statsSource{source("worker.input.", w.proc.Stats), source("worker.aggregate.", w.agg.Stats)}
	if w.drain != nil {
		ss = append(ss, source("worker.drain.", w.drain.Stats))
	}
	if w.server != nil {
		ss = append(ss, source("worker.drain.", w.server.Stats))
	}
	if w.otlp != nil {
		ss = append(ss, source("worker.otlp.", w.otlp.Stats))
	}
	if w.syslog != nil {
		ss = append(ss, source("worker.syslog.", w.syslog.Stats))
	}
	if w.tailer != nil {
		ss = append(ss, source("worker.logsession.", w.tailer.Stats))
	}
	for _, o := range w.outlets {
		ss = append(ss, o.stats)
	}
	if w.shared != nil {
		ss = append(ss, source("worker.redis.", w.shared.st.Stats))
	}
	if w.view != nil {
		ss = append(ss, source("worker.view.", w.view.Stats))
	}
	return ss
}

// buildEmitter registers the worker's self-metrics and builds the emitter that
// prints them to stdout, or to stderr when stdout carries the local outlet's
// buckets (EMITTER_INTERVAL, EMITTER_PREFIX, EMITTER_SOURCE): on Heroku both
// reach the log stream and they come back through the drain like any app
// line, with the worker's dyno as their source.
func (w *worker) buildEmitter() error {
	var errs []error
	for _, s := range w.statsSources() {
		errs = append(errs, s.register(w.reg))
	}
	u := func(f func() uint64) selfmetric.Counter { return func() int64 { return int64(f()) } }
	errs = append(errs,
		w.reg.Register("worker.input.own_lines", u(w.proc.OwnLines)),
		w.reg.Register("worker.aggregate.partial_timer_stats", u(w.intervals.count.Load)),
		w.reg.Register("worker.http.bytes_in_flight", metrics.NewFunctionalGauge(func() int64 { return w.budget.Stats().Used })))
	if w.shared != nil {
		// A map of its own: one counter per reason a Redis step failed.
		st := w.shared.st.Stats
		for _, r := range store.Reasons() {
			errs = append(errs, w.reg.Register("worker.redis.errors."+r, selfmetric.Counter(func() int64 { return int64(st().Errors[r]) })))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err // a name declared twice
	}

	cfg, err := emitter.FromEnv()
	if err != nil {
		return err
	}
	cfg.Registry = w.reg
	cfg.Writer = w.opt.stdout
	if slices.ContainsFunc(w.outlets, func(o namedOutlet) bool { return o.name == "console" }) && w.opt.stderr != nil {
		// stdout carries the buckets: keep the health lines apart.
		cfg.Writer = w.opt.stderr
	}
	cfg.Logger = w.log
	w.emitter, err = emitter.New(cfg)
	return err
}

// registerApp registers the self-metrics of one app in multi-app mode,
// worker.app.<app>.{lines, measurements, refused, dropped.<reason>} (and
// those of appstats.Other, under which the apps beyond appstats.MaxApps are
// counted). It is called by the appstats.Table when an app first arrives,
// so the names are declared as worker.redis.errors.<reason> are, one
// counter each, but at run time. A name registered already (an app named
// like another's metric part) is logged, never fatal.
func (w *worker) registerApp(app string, c *appstats.Counters) {
	p := "worker.app." + app + "."
	u := func(v *atomic.Uint64) selfmetric.Counter { return func() int64 { return int64(v.Load()) } }
	errs := []error{
		w.reg.Register(p+"lines", u(&c.Lines)),
		w.reg.Register(p+"measurements", u(&c.Measurements)),
		w.reg.Register(p+"refused", u(&c.Refused)),
	}
	for r := range appstats.NumReasons {
		errs = append(errs, w.reg.Register(p+"dropped."+r.String(), u(&c.Dropped[r])))
	}
	if err := errors.Join(errs...); err != nil {
		w.log.Warn("self-metrics of an app not registered", "app", app, "err", err)
	}
}

// appDropLog logs, at most once a minute per app, the apps whose new series
// the aggregator refused beyond their share (multi-app mode); every refusal
// is counted in worker.app.<app>.dropped.app_share.
type appDropLog struct {
	log  *throttle.Logger
	seen map[*appstats.Counters]uint64 // app_share drops already logged
}

// check logs the apps whose app-share drops grew since the last check.
// Called from the worker's ticker only.
func (l *appDropLog) check(apps *appstats.Table) {
	if apps == nil {
		return
	}
	apps.Each(func(app string, c *appstats.Counters) {
		n := c.Dropped[appstats.AppShare].Load()
		if n == l.seen[c] {
			return
		}
		if l.log.Log(slog.LevelWarn, "app_share "+app, "aggregate: new series of an app refused beyond its share of the series bound while other apps are active (logged at most once a minute per app; all counted)",
			"app", app, "refused", n, "self_metric", "worker.app."+app+".dropped.app_share") {
			l.seen[c] = n
		}
	})
}
