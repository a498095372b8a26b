// Command webapp is a small web app instrumented with the dynometrics emitter:
// it counts requests per status class and times every handler, and prints the
// metrics as l2met lines on stdout, where Heroku's log router picks them up.
// Nothing else goes to stdout; its own log lines go to stderr.
//
//	$ webapp -demo
//	at=metrics count#http.handler.root.count=12 sample#http.handler.root.min=0.01ms … count#http.requests=30 count#http.status.2xx=24 count#http.status.4xx=6
//
// It listens on :$PORT (5000 when PORT is unset, Heroku always sets it) or on
// -addr. The emitter reads EMITTER_INTERVAL (default 60s), EMITTER_PREFIX,
// EMITTER_SOURCE, EMITTER_STATSD_ADDR and EMITTER_RUNTIME.
//
// For a local demo, -demo (or DEMO_TRAFFIC=1) makes the app send itself a few
// requests per second for -demo-duration (default 30s) and, unless
// EMITTER_INTERVAL is set, emit every 5 seconds, so metric lines appear within
// seconds.
//
// On SIGTERM or SIGINT it stops accepting requests, lets running ones finish
// (up to ShutdownTimeout), then the emitter prints a final emission, so
// nothing counted is lost when Heroku restarts the dyno.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/dynometrics/dynometrics/emitter"
	metrics "github.com/rcrowley/go-metrics"
)

// ShutdownTimeout bounds the graceful HTTP shutdown; Heroku kills a dyno 30 s
// after SIGTERM, which leaves time for the final emission.
const ShutdownTimeout = 20 * time.Second

// DemoInterval is the emission interval in demo mode when EMITTER_INTERVAL is
// unset.
const DemoInterval = 5 * time.Second

// DefaultPort is used when $PORT is unset.
const DefaultPort = "5000"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "webapp:", err)
		os.Exit(1)
	}
}

// run is main without the process: the test drives it. ready, when not nil,
// receives the listening address.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(addr string)) error {
	fs := flag.NewFlagSet("webapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "listen address (default :$PORT, or :"+DefaultPort+" when PORT is unset)")
	demo := fs.Bool("demo", os.Getenv("DEMO_TRAFFIC") == "1", "send requests to itself (also DEMO_TRAFFIC=1)")
	demoFor := fs.Duration("demo-duration", 30*time.Second, "how long -demo sends requests")
	demoRate := fs.Int("demo-rate", 5, "requests per second -demo sends")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	cfg, err := emitter.FromEnv()
	if err != nil {
		return err
	}
	if *demo && os.Getenv("EMITTER_INTERVAL") == "" {
		cfg.Interval = DemoInterval
	}
	reg := metrics.NewRegistry()
	cfg.Registry, cfg.Writer, cfg.Logger = reg, stdout, log
	em, err := emitter.New(cfg)
	if err != nil {
		return err
	}
	defer em.Close()

	if *addr == "" {
		port := os.Getenv("PORT")
		if port == "" {
			port = DefaultPort
		}
		*addr = ":" + port
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newApp(reg).routes(), ReadHeaderTimeout: 10 * time.Second}
	log.Info("webapp listening", "addr", ln.Addr().String(), "emit_interval", cfg.Interval.String(), "demo", *demo)
	if ready != nil {
		ready(ln.Addr().String())
	}

	emitCtx, stopEmit := context.WithCancel(context.Background())
	emitDone := make(chan error, 1)
	go func() { emitDone <- em.Run(emitCtx) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()
	if *demo {
		go demoTraffic(ctx, "http://"+ln.Addr().String(), *demoRate, *demoFor, log)
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-serveDone:
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("webapp: shutdown", "err", err)
	}
	stopEmit() // after the last request: the final emission includes it
	emitErr := <-emitDone
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return errors.Join(serveErr, emitErr)
}

// app holds the metrics the handlers update.
type app struct {
	reg      metrics.Registry
	requests metrics.Counter
	status   [6]metrics.Counter // by status class: 1xx … 5xx
}

func newApp(reg metrics.Registry) *app {
	a := &app{reg: reg, requests: metrics.GetOrRegisterCounter("http.requests", reg)}
	for c := 1; c <= 5; c++ {
		a.status[c] = metrics.GetOrRegisterCounter("http.status."+strconv.Itoa(c)+"xx", reg)
	}
	return a
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", a.timed("root", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello from dynometrics")
	}))
	mux.Handle("GET /work", a.timed("work", func(w http.ResponseWriter, r *http.Request) {
		// Pretend to do 1-20 ms of work.
		select {
		case <-time.After(time.Duration(1+rand.IntN(20)) * time.Millisecond):
		case <-r.Context().Done():
		}
		fmt.Fprintln(w, "done")
	}))
	mux.Handle("GET /health", a.timed("health", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	}))
	return a.counted(mux)
}

// timed records the handler's duration in the per-interval timer
// http.handler.<name>.
func (a *app) timed(name string, h http.HandlerFunc) http.Handler {
	t := emitter.GetOrRegisterTimer("http.handler."+name, a.reg)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h(w, r)
		t.UpdateSince(start)
	})
}

// counted counts every request and its status class.
func (a *app) counted(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		a.requests.Inc(1)
		if c := sw.status / 100; c >= 1 && c <= 5 {
			a.status[c].Inc(1)
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// demoTraffic sends rate requests per second to base for d, spread over the
// app's routes and a missing one (for some 404s).
func demoTraffic(ctx context.Context, base string, rate int, d time.Duration, log *slog.Logger) {
	if rate < 1 {
		rate = 1
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	paths := []string{"/", "/work", "/work", "/health", "/missing"}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			log.Info("webapp: demo traffic done")
			return
		case <-tick.C:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+paths[i%len(paths)], nil)
		if err != nil {
			return
		}
		resp, err := client.Do(req)
		if err != nil {
			continue // shutting down
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
