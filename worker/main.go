package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/dynometrics/dynometrics/internal/appauth"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// stdinGrace is METRICS_GRACE's default with -stdin.
const stdinGrace = 2 * time.Second

func realMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	useStdin := fs.Bool("stdin", false, "read log lines from standard input: bare app lines, heroku-logs lines or syslog lines; "+
		"on SIGINT/SIGTERM keep reading until stdin ends (at most SHUTDOWN_TIMEOUT), then flush")
	version := fs.Bool("version", false, "print the version and exit")
	viewAddr := fs.String("view", "", "serve the live view (charts per dyno and for the whole app) on this address, e.g. 127.0.0.1:8080; works in every mode, -stdin included")
	drainURL := fs.String("drain-url", "", "multi-app mode: print APP's drain URL, its heroku drains:add line and, for Fir, its heroku telemetry:add line, "+
		"then exit; the password is derived from DRAIN_SECRET (docs/multi-app.md)")
	drainHost := fs.String("drain-host", "", "the metrics app's host name for -drain-url, e.g. myapp-metrics-1a2b.herokuapp.com (default DRAIN_HOST)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Run worker -h for the flags and every variable.\n")
	}
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			// Asked for: the usage goes to stdout, so `worker -h | less` works.
			printUsage(stdout, func(f func(name, usage string)) { fs.VisitAll(func(fl *flag.Flag) { f(fl.Name, fl.Usage) }) })
			return 0
		}
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *version {
		fmt.Fprintln(stdout, versionString())
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "worker: unexpected argument %q (configuration comes from the environment; see worker -h)\n", fs.Arg(0))
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	cfg, err := loadConfig()
	if err != nil {
		printConfigError(stderr, err)
		return 2
	}
	if *drainURL != "" {
		return printDrainURL(stdout, stderr, cfg, *drainURL, *drainHost)
	}
	opt := options{stdout: stdout, stderr: stderr, logger: logger, viewOptions: viewOptions{view: *viewAddr}}
	if *useStdin {
		opt.stdin = stdin
		if os.Getenv("METRICS_GRACE") == "" {
			// Bare lines on stdin are stamped as they arrive: none is late,
			// and the first bucket shows sooner.
			cfg.Buckets.Grace = stdinGrace
		}
	}
	// Signals are caught before newWorker logs that it is ready (a signal
	// sent on that line must stop the worker, not kill it).
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// Everything is built and checked before anything starts.
	w, err := newWorker(cfg, opt)
	if err != nil {
		printConfigError(stderr, err)
		return 2
	}
	if err := w.run(ctx); err != nil {
		logger.Error("worker stopped", "err", err)
		return 1
	}
	return 0
}

// printDrainURL prints app's drain URL, with the user the app's name and the
// password its token under the first secret of DRAIN_SECRET, and the
// commands that add it to the app. The token is the app's own credential,
// meant to be pasted; DRAIN_SECRET itself is never printed.
func printDrainURL(stdout, stderr io.Writer, cfg Config, app, host string) int {
	keys, err := cfg.Drain.Apps()
	if err == nil && keys == nil {
		err = errors.New("-drain-url needs DRAIN_SECRET (multi-app mode): set it as on the metrics app, e.g. DRAIN_SECRET=$(heroku config:get DRAIN_SECRET -a myapp-metrics)")
	}
	if err == nil {
		err = appauth.ValidName(app)
	}
	host = cmp.Or(host, cfg.Drain.Host)
	if err == nil && host == "" {
		err = errors.New("-drain-url needs the metrics app's host name: -drain-host HOST or DRAIN_HOST, e.g. myapp-metrics-1a2b.herokuapp.com")
	}
	if err == nil && (strings.ContainsAny(host, "/@?# ") || strings.Contains(host, "://")) {
		err = fmt.Errorf("-drain-host %q: want a bare host name (no scheme, path or credentials)", host)
	}
	if err != nil {
		fmt.Fprintf(stderr, "worker: %v\n", err)
		return 2
	}
	u := keys.DrainURL(host, app)
	fmt.Fprintln(stdout, u)
	fmt.Fprintf(stdout, "heroku drains:add '%s' -a %s\n", u, app)
	fmt.Fprintf(stdout, "heroku telemetry:add 'https://%s' --app %s --signals logs,metrics --transport http --headers '{\"Authorization\":\"%s\"}'\n",
		host, app, keys.BasicHeader(app))
	return 0
}

// printConfigError prints each configuration problem on its own line.
func printConfigError(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(line, errConfig.Error()+": ") {
			line = errConfig.Error() + ": " + line
		}
		fmt.Fprintf(w, "worker: %s\n", line)
	}
	fmt.Fprintf(w, "worker: see worker -h for every variable\n")
}
