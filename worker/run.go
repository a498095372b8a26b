package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/dynometrics/dynometrics/emitter"
	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/console"
	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/input/logsession"
	"github.com/dynometrics/dynometrics/internal/input/syslog"
	"github.com/dynometrics/dynometrics/internal/librato"
	"github.com/dynometrics/dynometrics/internal/outlet"
	"github.com/dynometrics/dynometrics/internal/promwrite"
	metrics "github.com/rcrowley/go-metrics"
)

// flushEvery is how often the worker asks the aggregator for buckets whose end
// plus grace has passed. It bounds how late a bucket leaves, not its content.
const flushEvery = time.Second

// options are what the command line and tests add to Config.
type options struct {
	stdin  io.Reader // read log lines from here (-stdin); nil: no stdin input
	stdout io.Writer // the local outlet and the self-metrics emitter write here
	logger *slog.Logger

	// Tests only.
	drainListener net.Listener       // serve the drain here instead of on :PORT
	flushEvery    time.Duration      // 0 means flushEvery
	queue         outlet.QueueConfig // delivery tuning for every outlet (tests shorten the backoff)
	now           func() time.Time   // the clock of arrival times and flushes; nil means time.Now
	ready         func(a *worker)    // called once every input runs
	redisTimeout  time.Duration      // one Redis round trip's bound; 0 means store.DefaultOpTimeout
}

// namedOutlet is an outlet with the name its self-metrics carry.
type namedOutlet struct {
	name string
	outlet.Outlet
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

	drain   *drain.Handler
	mux     *http.ServeMux // what PORT serves: the drain, and beside it whatever else shares the port
	server  *drain.Server
	syslog  *syslog.Server
	tailer  *logsession.Tailer
	emitter *emitter.Emitter
	shared  *shared // REDIS_URL: shared state (worker/store.go); nil without
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
	if opt.logger == nil {
		opt.logger = slog.Default()
	}
	if opt.now == nil {
		opt.now = time.Now
	}
	if opt.flushEvery <= 0 {
		opt.flushEvery = flushEvery
	}
	w := &worker{cfg: cfg, opt: opt, log: opt.logger, reg: metrics.NewRegistry(), mux: http.NewServeMux()}
	if cfg.Port == "" && cfg.SyslogAddr == "" && cfg.HerokuAPIKey == "" && opt.stdin == nil && opt.drainListener == nil {
		return nil, errors.New("no input configured: set PORT (HTTPS drain), SYSLOG_ADDR, or HEROKU_API_KEY and HEROKU_APP_NAME (log sessions), or run with -stdin")
	}
	var err error
	w.agg, err = aggregate.New(aggregate.Config{Resolution: cfg.MetricsResolution, Grace: cfg.MetricsGrace, Now: opt.now})
	if err != nil {
		return nil, err
	}
	if err := w.buildOutlets(); err != nil {
		return nil, err
	}
	if err := w.buildShared(); err != nil {
		return nil, err
	}
	w.proc, err = input.NewProcessor(w.agg, input.Config{Logger: w.log, Now: opt.now})
	if err != nil {
		return nil, err
	}
	if err := w.buildInputs(); err != nil {
		return nil, err
	}
	if err := w.buildEmitter(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *worker) buildOutlets() error {
	cfg := w.cfg
	tags, err := librato.ParseTags(cfg.MetricsTags)
	if err != nil {
		return fmt.Errorf("METRICS_TAGS: %w", err)
	}
	if cfg.librato() {
		o, err := librato.New(librato.Config{
			User: cfg.LibratoUser, Token: cfg.LibratoToken, URL: cfg.LibratoURL, API: cfg.LibratoAPI,
			Prefix: cfg.MetricsPrefix, Tags: tags, Queue: w.queueFor(4, librato.MaxMetricsPerPost), Logger: w.log,
		})
		if err != nil {
			return err
		}
		w.outlets = append(w.outlets, namedOutlet{"librato", o})
		w.outletMetrics("librato", func() outlet.QueueStats { return o.Stats().Queue })
	}
	if cfg.remoteWrite() {
		headers, err := promwrite.ParseHeaders(cfg.RemoteWriteHeaders)
		if err != nil {
			return fmt.Errorf("REMOTE_WRITE_HEADERS: %w", err)
		}
		o, err := promwrite.New(promwrite.Config{
			URL: cfg.RemoteWriteURL, User: cfg.RemoteWriteUser, Password: cfg.RemoteWritePassword,
			BearerToken: cfg.RemoteWriteBearerToken, Headers: headers,
			Prefix: cfg.MetricsPrefix, Tags: tags, Queue: w.queueFor(7, promwrite.DefaultMaxSeriesPerRequest), Logger: w.log,
			Now: w.opt.now,
		})
		if err != nil {
			return err
		}
		w.outlets = append(w.outlets, namedOutlet{"remote_write", o})
		w.outletMetrics("remote_write", func() outlet.QueueStats { return o.Stats().Queue })
	}
	if len(w.outlets) == 0 {
		w.log.Info("no outlet configured (LIBRATO_TOKEN, REMOTE_WRITE_URL): printing buckets to stdout")
		w.outlets = append(w.outlets, namedOutlet{"console", console.New(w.opt.stdout, cfg.MetricsPrefix)})
	}
	return nil
}

func (w *worker) buildInputs() error {
	cfg := w.cfg
	if cfg.Port != "" || w.opt.drainListener != nil {
		h, err := drain.New(w.proc, drain.Config{
			User: cfg.DrainUser, Password: cfg.DrainPassword, InsecureNoAuth: cfg.DrainInsecureNoAuth, Logger: w.log,
			SharedSeen: w.sharedFrameSeen(), Workers: w.drainWorkers(),
		})
		if err != nil {
			return err
		}
		w.drain = h
		w.mux.Handle(drain.LogsPath, h)
		w.mux.Handle(drain.HealthPath, h)
		w.server = drain.NewServer(":"+cfg.Port, w.mux, 0)
		w.server.ErrorLog = slog.NewLogLogger(w.log.Handler(), slog.LevelWarn)
	}
	if cfg.SyslogAddr != "" {
		s, err := syslog.New(w.proc, syslog.Config{
			Addr: cfg.SyslogAddr, TLSCertFile: cfg.SyslogTLSCert, TLSKeyFile: cfg.SyslogTLSKey, Logger: w.log,
		})
		if err != nil {
			return err
		}
		w.syslog = s
	}
	if cfg.HerokuAPIKey != "" {
		t, err := logsession.New(w.proc, logsession.Config{
			APIKey: cfg.HerokuAPIKey, App: cfg.HerokuAppName, BaseURL: cfg.HerokuAPIURL, Logger: w.log,
		})
		if err != nil {
			return err
		}
		w.tailer = t
	}
	return nil
}

// run starts every input and the flush loop, waits for ctx (or the end of
// stdin, or an input that cannot go on), then shuts down.
func (w *worker) run(ctx context.Context) error {
	inputCtx, stopInputs := context.WithCancel(context.Background())
	defer stopInputs()
	done := make(chan error, 4) // an input that ended: nil for the end of stdin
	var wg sync.WaitGroup
	start := func(f func() error) {
		wg.Add(1)
		go func() { defer wg.Done(); done <- f() }()
	}

	if w.server != nil {
		l := w.opt.drainListener
		if l == nil {
			var err error
			if l, err = net.Listen("tcp", w.server.Addr); err != nil {
				return fmt.Errorf("drain: listen on PORT=%s: %w", w.cfg.Port, err)
			}
		}
		w.log.Info("HTTPS drain listening", "addr", l.Addr().String(), "path", drain.LogsPath)
		start(func() error {
			if err := w.server.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("drain: %w", err)
			}
			return nil
		})
	}
	if w.syslog != nil {
		w.log.Info("syslog listening", "addr", w.cfg.SyslogAddr, "tls", w.syslog.TLS())
		start(func() error {
			if err := w.syslog.ListenAndServe(); !errors.Is(err, syslog.ErrServerClosed) {
				return fmt.Errorf("syslog: %w", err)
			}
			return nil
		})
	}
	if w.tailer != nil {
		w.log.Info("tailing the app's logs through log sessions", "app", w.cfg.HerokuAppName)
		start(func() error { _ = w.tailer.Run(inputCtx); return nil })
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
loop:
	for {
		select {
		case <-ctx.Done():
			w.log.Info("shutting down", "reason", context.Cause(ctx))
			break loop
		case err := <-stdinDone:
			if err != nil {
				runErr = fmt.Errorf("stdin: %w", err)
			}
			w.log.Info("end of stdin: flushing and exiting")
			break loop
		case err := <-done:
			if err != nil {
				runErr = err
				break loop
			}
		case <-tick.C:
			if w.shared == nil { // with shared state the store flushes
				w.write(w.agg.Flush(w.opt.now()))
			}
		}
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), w.cfg.ShutdownTimeout)
	defer cancel()
	err := w.shutdown(shutdownCtx, stopInputs, &wg)
	stopEmitter()
	if e := <-emitDone; e != nil && !errors.Is(e, context.Canceled) {
		err = errors.Join(err, fmt.Errorf("self-metrics: %w", e))
	}
	return errors.Join(runErr, err)
}

// shutdown stops the inputs (the drain's queued bodies still reach the
// aggregator), flushes every open bucket including the current partial one,
// and closes the outlets, which send what they have queued until ctx ends.
func (w *worker) shutdown(ctx context.Context, stopInputs func(), wg *sync.WaitGroup) error {
	var errs []error
	if w.server != nil {
		if err := w.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain server: %w", err))
		}
		if err := w.drain.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if w.syslog != nil {
		if err := w.syslog.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	stopInputs()
	wg.Wait()

	w.flushAtExit(ctx)
	var owg sync.WaitGroup
	oerrs := make([]error, len(w.outlets))
	for i, o := range w.outlets {
		owg.Add(1)
		go func() {
			defer owg.Done()
			if err := o.Close(ctx); err != nil {
				oerrs[i] = fmt.Errorf("outlet %s: %w", o.name, err)
			}
		}()
	}
	owg.Wait()
	if err := w.releaseShared(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(append(errs, oerrs...)...)
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
