package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/dynometrics/dynometrics/emitter"
	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/appstats"
	"github.com/dynometrics/dynometrics/internal/console"
	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/budget"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/input/logsession"
	"github.com/dynometrics/dynometrics/internal/input/otlp"
	"github.com/dynometrics/dynometrics/internal/input/syslog"
	"github.com/dynometrics/dynometrics/internal/librato"
	"github.com/dynometrics/dynometrics/internal/outlet"
	"github.com/dynometrics/dynometrics/internal/promwrite"
	"github.com/dynometrics/dynometrics/internal/throttle"
	metrics "github.com/rcrowley/go-metrics"
)

// flushEvery is how often the worker asks the aggregator for buckets whose end
// plus grace has passed. It bounds how late a bucket leaves, not its content.
const flushEvery = time.Second

// options are what the command line and tests add to Config.
type options struct {
	stdin  io.Reader // read log lines from here (-stdin); nil: no stdin input
	stdout io.Writer // the local outlet and the self-metrics emitter write here
	stderr io.Writer // with the local outlet, self-metrics go here instead (nil: stdout)
	logger *slog.Logger

	// Tests only.
	drainListener net.Listener       // serve the drain here instead of on :PORT
	flushEvery    time.Duration      // 0 means flushEvery
	queue         outlet.QueueConfig // delivery tuning for every outlet (tests shorten the backoff)
	now           func() time.Time   // the clock of arrival times and flushes; nil means time.Now
	ready         func(a *worker)    // called once every input runs

	viewOptions                // the live view (worker/view.go)
	redisTimeout time.Duration // one Redis round trip's bound; 0 means store.DefaultOpTimeout
}

// namedOutlet is an outlet with the name its self-metrics carry.
type namedOutlet struct {
	name string
	outlet.Outlet
	stats statsSource // worker.outlet.<name>.*
}

// named returns o with its name and its Stats.
func named[S any](name string, o outlet.Outlet, stats func() S) namedOutlet {
	return namedOutlet{name, o, source("worker.outlet."+name+".", stats)}
}

// worker is one running pipeline: inputs → processor → aggregator → outlets.
type worker struct {
	cfg     Config
	opt     options
	log     *slog.Logger
	agg     *aggregate.Aggregator
	proc    *input.Processor
	outlets []namedOutlet
	// viewers see every merged bucket of the app, after the outlets were
	// given it (the live view). With shared state they also see the buckets
	// other workers flushed. They must not keep b's Series slice or modify it.
	viewers []func(b *aggregate.Bucket)
	reg     metrics.Registry

	drain *drain.Handler
	otlp  *otlp.Receiver // the OTLP/HTTP receiver on PORT (worker/otlp.go)
	mux   *http.ServeMux // what PORT serves: the drain, and beside it whatever else shares the port
	// budget bounds the request bytes being read and decoded at once on PORT
	// and -view: drain bodies, OTLP bodies (raw, inflated, decoded) and the
	// view's API answers (docs/hardening.md: the worker's memory).
	budget  *budget.Budget
	server  *drain.Server
	syslog  *syslog.Server
	tailer  *logsession.Tailer
	emitter *emitter.Emitter

	intervals *intervalCheck // timer statistics emitted more often than the buckets (intervalcheck.go)
	liveView                 // worker/view.go
	shared    *shared        // REDIS_URL: shared state (worker/store.go); nil without

	apps     *appstats.Table // per-app counts in multi-app mode (DRAIN_SECRET), else nil (worker/selfmetrics.go)
	appDrops appDropLog      // logs the apps refused new series for their share
}

// run wires the pipeline from cfg, runs it until ctx ends (or stdin ends, with
// -stdin), then shuts down in order so that nothing accepted is lost.
func run(ctx context.Context, cfg Config, opt options) error {
	w, err := newWorker(cfg, opt)
	if err != nil {
		return err
	}
	return w.run(ctx)
}

func newWorker(cfg Config, opt options) (*worker, error) {
	opt.logger = cmp.Or(opt.logger, slog.Default())
	if opt.now == nil {
		opt.now = time.Now
	}
	opt.flushEvery = cmp.Or(opt.flushEvery, flushEvery) // tests set a positive one or none
	w := &worker{cfg: cfg, opt: opt, log: opt.logger, reg: metrics.NewRegistry(), mux: http.NewServeMux(),
		budget: budget.New(budget.Default)}
	if cfg.Drain.Port == "" && cfg.Syslog.Addr == "" && cfg.LogSession.APIKey == "" && opt.stdin == nil && opt.drainListener == nil {
		return nil, errors.New("no input configured: set PORT (HTTPS drain), SYSLOG_ADDR, or HEROKU_API_KEY and HEROKU_APP_NAME (log sessions), or run with -stdin")
	}
	if cfg.Drain.MultiApp() && opt.stdin != nil {
		return nil, errors.New("-stdin: its lines carry no app credentials; unset DRAIN_SECRET (multi-app mode) to read stdin")
	}
	var err error
	if cfg.Drain.MultiApp() {
		w.apps = appstats.New(w.registerApp)
		w.appDrops = appDropLog{log: throttle.New(w.log, time.Minute, opt.now), seen: map[*appstats.Counters]uint64{}}
	}
	ac := cfg.Buckets.Config()
	ac.Now, ac.Apps = opt.now, w.apps
	if w.agg, err = aggregate.New(ac); err != nil {
		return nil, err
	}
	if w.proc, err = input.NewProcessor(w.agg, input.Config{Logger: w.log, Now: opt.now, Apps: w.apps}); err != nil {
		return nil, err
	}
	w.intervals = &intervalCheck{res: cfg.Buckets.Resolution, log: throttle.New(w.log, intervalWarnEvery, opt.now)}
	w.viewers = append(w.viewers, w.intervals.view)
	// The outlets come before shared state (it names them), shared state
	// before the inputs (the drain asks it about Frame-Ids), and the emitter
	// last (it publishes every component's Stats).
	for _, build := range []func() error{w.buildOutlets, w.buildShared, w.buildInputs, w.buildView, w.buildEmitter} {
		if err := build(); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func (w *worker) buildOutlets() error {
	cfg := w.cfg
	tags, err := cfg.Metrics.ParsedTags()
	if err != nil {
		return err
	}
	if cfg.Librato.Enabled() {
		o, err := librato.New(librato.Config{
			User: cfg.Librato.User, Token: cfg.Librato.Token, URL: cfg.Librato.URL, API: cfg.Librato.API,
			Prefix: cfg.Metrics.Prefix, Tags: tags, Queue: w.queueFor(4, librato.MaxMetricsPerPost), Logger: w.log,
		})
		if err != nil {
			return err
		}
		w.outlets = append(w.outlets, named("librato", o, o.Stats))
	}
	if cfg.RemoteWrite.Enabled() {
		pc, err := cfg.RemoteWrite.Config(tags)
		if err != nil {
			return err
		}
		pc.Prefix, pc.Queue, pc.Logger, pc.Now = cfg.Metrics.Prefix, w.queueFor(7, promwrite.DefaultMaxSeriesPerRequest), w.log, w.opt.now
		o, err := promwrite.New(pc)
		if err != nil {
			return err
		}
		w.outlets = append(w.outlets, named("remote_write", o, o.Stats))
	}
	if err := w.buildOTLPOutlet(tags); err != nil {
		return err
	}
	if len(w.outlets) == 0 {
		w.log.Info("no outlet configured (LIBRATO_TOKEN, REMOTE_WRITE_URL, OTEL_EXPORTER_OTLP_ENDPOINT): printing buckets to stdout")
		o := console.New(w.opt.stdout, cfg.Metrics.Prefix)
		w.outlets = append(w.outlets, named("console", o, o.Stats))
	}
	return nil
}

func (w *worker) buildInputs() error {
	cfg := w.cfg
	var err error
	if cfg.Drain.Port != "" || w.opt.drainListener != nil {
		apps, err := cfg.Drain.Apps()
		if err != nil {
			return err
		}
		if apps != nil {
			w.log.Info("multi-app mode (DRAIN_SECRET): each app drains with its own credentials; worker -drain-url APP prints them")
		}
		if w.drain, err = drain.New(w.proc, drain.Config{
			User: cfg.Drain.User, Password: cfg.Drain.Password, InsecureNoAuth: cfg.Drain.InsecureNoAuth, Apps: apps, AppStats: w.apps, Logger: w.log,
			SharedSeen: w.sharedFrameSeen(), Budget: w.budget,
		}); err != nil {
			return err
		}
		w.mux.Handle(drain.LogsPath, w.drain)
		w.mux.Handle(drain.HealthPath, w.drain)
		if err := w.buildOTLP(apps); err != nil {
			return err
		}
		w.server = drain.NewServer(net.JoinHostPort(cfg.Drain.BindAddr, cfg.Drain.Port), w.mux, 0)
		w.server.ErrorLog = slog.NewLogLogger(w.log.Handler(), slog.LevelWarn)
	}
	if cfg.Syslog.Addr != "" {
		if w.syslog, err = syslog.New(w.proc, syslog.Config{
			Addr: cfg.Syslog.Addr, TLSCertFile: cfg.Syslog.TLSCert, TLSKeyFile: cfg.Syslog.TLSKey, Logger: w.log,
		}); err != nil {
			return err
		}
	}
	if cfg.LogSession.APIKey != "" {
		w.tailer, err = logsession.New(w.proc, logsession.Config{
			APIKey: cfg.LogSession.APIKey, App: cfg.LogSession.App, BaseURL: cfg.LogSession.BaseURL, Logger: w.log,
		})
	}
	return err
}

// run starts every input and the flush loop, waits for ctx (or the end of
// stdin, or an input that cannot go on), then shuts down.
func (w *worker) run(ctx context.Context) error {
	inputCtx, stopInputs := context.WithCancel(context.Background())
	defer stopInputs()
	done := make(chan error, 8) // why a server stopped that was not closed
	var wg sync.WaitGroup
	// serve runs a server on l in wg until it is closed (closed: the error
	// its Serve returns then); any other end is the worker's.
	serve := func(name string, f func(net.Listener) error, l net.Listener, closed error) {
		wg.Go(func() {
			if err := f(l); !errors.Is(err, closed) {
				done <- fmt.Errorf("%s: %w", name, err)
			}
		})
	}

	// Bind every listener before starting anything, so that a port in use
	// stops the worker before it says it listens anywhere.
	var drainL, syslogL, viewL net.Listener
	var err error
	if w.server != nil {
		drainL, err = listen(w.opt.drainListener, w.server.Addr, "drain: listen on BIND_ADDR="+w.cfg.Drain.BindAddr+" PORT="+w.cfg.Drain.Port)
	}
	if w.syslog != nil && err == nil {
		syslogL, err = listen(nil, w.cfg.Syslog.Addr, "syslog: listen on SYSLOG_ADDR="+w.cfg.Syslog.Addr)
	}
	if w.viewServer != nil && err == nil {
		viewL, err = listen(w.opt.viewListener, w.opt.view, "view: listen on -view "+w.opt.view)
	}
	if err != nil {
		for _, l := range []net.Listener{drainL, syslogL} {
			if l != nil {
				l.Close()
			}
		}
		return err
	}
	if w.viewServer != nil {
		w.log.Info("live view", "url", "http://"+urlHost(viewL.Addr())+"/")
		serve("view", w.viewServer.Serve, viewL, http.ErrServerClosed)
	}
	if w.server != nil {
		w.log.Info("HTTPS drain listening", "addr", drainL.Addr().String(), "path", drain.LogsPath)
		serve("drain", w.server.Serve, drainL, http.ErrServerClosed)
	}
	if w.syslog != nil {
		w.log.Info("syslog listening", "addr", syslogL.Addr().String(), "tls", w.syslog.TLS())
		serve("syslog", w.syslog.Serve, syslogL, syslog.ErrServerClosed)
	}
	if w.tailer != nil {
		w.log.Info("tailing the app's logs through log sessions", "app", w.cfg.LogSession.App)
		wg.Go(func() { _ = w.tailer.Run(inputCtx) })
	}
	stdinDone := make(chan error, 1)
	if w.opt.stdin != nil {
		// Not in wg: a read blocked on os.Stdin cannot be interrupted.
		go func() { stdinDone <- w.proc.ReadLines(inputCtx, w.opt.stdin, input.FormatAny) }()
	}

	emitCtx, stopEmitter := context.WithCancel(context.Background())
	emitDone := make(chan error, 1)
	go func() { emitDone <- w.emitter.Run(emitCtx) }()

	tick := time.NewTicker(w.opt.flushEvery)
	defer tick.Stop()
	w.startShared()
	if w.opt.ready != nil {
		w.opt.ready(w)
	}

	var runErr error
	var deadline time.Time // SHUTDOWN_TIMEOUT counts from the signal, stdin's wait included
loop:
	for {
		select {
		case <-ctx.Done():
			w.log.Info("shutting down", "reason", context.Cause(ctx))
			deadline = time.Now().Add(w.cfg.ShutdownTimeout)
			if w.opt.stdin != nil {
				runErr = w.finishStdin(stdinDone)
			}
			break loop
		case err := <-stdinDone:
			if err != nil {
				runErr = fmt.Errorf("stdin: %w", err)
			}
			w.log.Info("end of stdin: flushing and exiting")
			break loop
		case runErr = <-done:
			break loop
		case <-tick.C:
			if w.shared == nil { // with shared state the store flushes
				w.write(w.agg.Flush(w.opt.now()))
			}
			w.appDrops.check(w.apps)
		}
	}

	if deadline.IsZero() {
		deadline = time.Now().Add(w.cfg.ShutdownTimeout)
	}
	shutdownCtx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	err = w.shutdown(shutdownCtx, stopInputs, &wg)
	w.appDrops.check(w.apps) // what the last second refused
	stopEmitter()
	if e := <-emitDone; e != nil && !errors.Is(e, context.Canceled) {
		err = errors.Join(err, fmt.Errorf("self-metrics: %w", e))
	}
	return errors.Join(runErr, err)
}

// Shares of SHUTDOWN_TIMEOUT per shutdown stage. Each stage has its own
// budget, so a slow client or a stuck input cannot use up the time the final
// flush needs: the flush and the outlets get what the first two stages leave,
// at least outletShare of the whole.
const (
	serverShare = 0.2 // stop accepting; requests in flight finish, then connections are closed
	drainShare  = 0.2 // parse the bodies the drain accepted; the other inputs stop
	outletShare = 1 - serverShare - drainShare
)

// finishStdin keeps reading stdin after SIGINT/SIGTERM until it ends, for at
// most half of SHUTDOWN_TIMEOUT (the rest is for flushing and sending): on
// Ctrl-C the app writing into the pipe gets the signal too and prints its
// final emission before it exits, which closes the pipe.
func (w *worker) finishStdin(stdinDone <-chan error) error {
	limit := w.cfg.ShutdownTimeout / 2
	w.log.Info("reading stdin until it ends (a second Ctrl-C stops at once)", "at_most", limit.String())
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-again:
		w.log.Warn("second signal: flushing what was read from stdin")
	case err := <-stdinDone:
		if err != nil {
			return fmt.Errorf("stdin: %w", err)
		}
		w.log.Info("end of stdin: flushing and exiting")
	case <-t.C:
		w.log.Warn("stdin did not end within half of SHUTDOWN_TIMEOUT: flushing what was read", "waited", limit.String())
	}
	return nil
}

// shutdown stops the inputs (the drain's queued bodies still reach the
// aggregator), flushes every open bucket including the current partial one,
// and closes the outlets, which send what they have queued until ctx ends.
// ctx ends at most SHUTDOWN_TIMEOUT from now (less after -stdin waited for the
// end of its input): each stage gets its share of SHUTDOWN_TIMEOUT, capped by ctx;
// see serverShare.
func (w *worker) shutdown(ctx context.Context, stopInputs func(), wg *sync.WaitGroup) error {
	stage := func(share float64) (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, time.Duration(share*float64(w.cfg.ShutdownTimeout)))
	}
	errs := make([]error, 3) // stage 1's: the drain's, syslog's and the view's server

	// 1. Stop accepting. A request still being read when the share ends (a
	// client trickling its body) is cut off: it was never answered 2xx, so
	// Logplex retries it.
	sctx, cancel := stage(serverShare)
	var swg sync.WaitGroup
	if w.server != nil {
		swg.Go(func() {
			if err := w.server.Shutdown(sctx); err != nil {
				_ = w.server.Close()
				errs[0] = fmt.Errorf("drain server: connections still open after %s, closed: %w",
					time.Duration(serverShare*float64(w.cfg.ShutdownTimeout)), err)
			}
		})
	}
	if w.syslog != nil {
		swg.Go(func() { errs[1] = w.syslog.Close(sctx) })
	}
	if w.viewServer != nil { // the page's requests are short: Shutdown returns quickly
		swg.Go(func() {
			if err := w.viewServer.Shutdown(sctx); err != nil {
				errs[2] = fmt.Errorf("view server: %w", err)
			}
		})
	}
	swg.Wait()
	cancel()

	// 2. Parse what the drain accepted; stop the other inputs.
	dctx, cancel := stage(drainShare)
	if w.drain != nil {
		errs = append(errs, w.drain.Close(dctx))
	}
	errs = append(errs, w.closeOTLP(dctx))
	stopInputs()
	if input.Wait(dctx, wg) != nil {
		errs = append(errs, errors.New("inputs still running after their share of SHUTDOWN_TIMEOUT"))
	}
	cancel()

	// 3. Flush every open bucket and deliver: the rest of ctx.
	w.flushAtExit(ctx)
	var owg sync.WaitGroup
	oerrs := make([]error, len(w.outlets))
	for i, o := range w.outlets {
		owg.Go(func() {
			if err := o.Close(ctx); err != nil {
				oerrs[i] = fmt.Errorf("outlet %s: %w", o.name, err)
			}
		})
	}
	owg.Wait()
	if err := w.releaseShared(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(append(errs, oerrs...)...)
}

// listen returns l, or when l is nil (tests pass their own) a listener on
// addr; its error starts with what.
func listen(l net.Listener, addr, what string) (net.Listener, error) {
	if l != nil {
		return l, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return l, nil
}

// write hands every bucket to every outlet, then to every viewer.
func (w *worker) write(buckets []*aggregate.Bucket) {
	for _, b := range buckets {
		for _, o := range w.outlets {
			o.Write(b)
		}
		for _, v := range w.viewers {
			v(b)
		}
	}
}
