// Command webapp is a small web app instrumented with the dynometrics emitter:
// it counts requests per status class and times every handler, and prints the
// metrics as l2met lines on stdout, where Heroku's log router picks them up.
// Nothing else goes to stdout; its own log lines go to stderr.
//
//	$ webapp -demo
//	at=metrics count#http.handler.root.count=12 sample#http.handler.root.min=0.01ms … count#http.requests=30 count#http.status.2xx=24 count#http.status.4xx=6
//
// It listens on :$PORT (Heroku always sets it), or on -addr, or on :8000
// (DefaultPort) when neither is given, and prints the URL it serves on
// stderr. The emitter reads EMITTER_INTERVAL (default 60s), EMITTER_PREFIX,
// EMITTER_SOURCE, EMITTER_STATSD_ADDR and EMITTER_RUNTIME.
//
// For a local demo, -demo (or DEMO_TRAFFIC=1) makes the app send itself a few
// requests per second until it is stopped (or for -demo-duration) and, unless
// EMITTER_INTERVAL or METRICS_RESOLUTION is set, emit every 10 seconds
// (DemoInterval), so metric lines appear within seconds. In -demo mode
// without PORT or -addr, a busy port 8000 is replaced by a free one.
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

// DemoInterval is the emission interval in demo mode when EMITTER_INTERVAL and
// METRICS_RESOLUTION are unset: the README's demo runs the worker with
// METRICS_RESOLUTION=10s, and timer statistics are right per bucket when the
// two are equal.
const DemoInterval = 10 * time.Second

// DefaultPort is used when $PORT and -addr are unset. Not 5000, which macOS
// uses for AirPlay.
const DefaultPort = "8000"

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
	demoFor := fs.Duration("demo-duration", 0, "how long -demo sends requests (0: until the app is stopped)")
	demoRate := fs.Int("demo-rate", 5, "requests per second -demo sends")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	cfg, err := emitter.FromEnv()
	if err != nil {
		return err
	}
	if *demo && os.Getenv("EMITTER_INTERVAL") == "" && os.Getenv("METRICS_RESOLUTION") == "" {
		cfg.Interval = DemoInterval
	}
	reg := metrics.NewRegistry()
	cfg.Registry, cfg.Writer, cfg.Logger = reg, stdout, log
	em, err := emitter.New(cfg)
	if err != nil {
		return err
	}

	ln, err := listen(*addr, *demo)
	if err != nil {
		em.Close()
		return err
	}
	srv := &http.Server{Handler: newApp(reg).routes(), ReadHeaderTimeout: 10 * time.Second}
	url := "http://" + displayAddr(ln.Addr())
	log.Info("webapp listening", "url", url, "emit_interval", cfg.Interval.String(), "demo", *demo)
	if *demo {
		fmt.Fprintf(stderr, "webapp: serving %s; sending itself %d requests a second; metric lines every %s on stdout; Ctrl-C stops it\n",
			url, *demoRate, cfg.Interval)
	}
	if ready != nil {
		ready(ln.Addr().String())
	}

	em.Start()
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
	// serveErr is nil or a real failure (Serve returns ErrServerClosed only after Shutdown).
	return errors.Join(serveErr, em.Stop()) // Stop after the last request: the final emission includes it
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
		defer t.UpdateSince(time.Now())
		h(w, r)
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

// demoTraffic sends rate requests per second to base until ctx ends or, when
// d > 0, for d, spread over the app's routes and a missing one (for some 404s).
func demoTraffic(ctx context.Context, base string, rate int, d time.Duration, log *slog.Logger) {
	rate = max(rate, 1)
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	client := &http.Client{Timeout: 5 * time.Second}
	paths := []string{"/", "/work", "/work", "/health", "/missing"}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done(): // stopping: nothing to say
			return
		case <-timeout:
			log.Info("webapp: demo traffic done (-demo-duration elapsed); still serving until stopped", "after", d.String())
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

// listen binds addr, else :$PORT, else :DefaultPort. In demo mode a busy
// default port is replaced by a free one (the URL is printed either way).
func listen(addr string, demo bool) (net.Listener, error) {
	if addr != "" {
		return net.Listen("tcp", addr)
	}
	if port := os.Getenv("PORT"); port != "" {
		return net.Listen("tcp", ":"+port)
	}
	ln, err := net.Listen("tcp", ":"+DefaultPort)
	if err != nil && demo {
		return net.Listen("tcp", "127.0.0.1:0")
	}
	return ln, err
}

// displayAddr turns a listener address into one a browser can open:
// localhost for the unspecified address.
func displayAddr(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		return "localhost:" + strconv.Itoa(ta.Port)
	}
	return a.String()
}
