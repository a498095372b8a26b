// Command worker is the dynometrics worker: it consumes a Heroku-style app's
// log stream (an HTTPS drain with Logplex framing, a Fir telemetry drain
// speaking OTLP/HTTP, a syslog drain, stdin, or the app's own Platform API
// log session), parses the l2met conventions and the platform's own lines,
// aggregates them into time buckets per metric and per dyno, optionally
// shares those buckets with the app's other workers through Redis
// (REDIS_URL), and forwards every bucket to the configured outlets: OTLP,
// Prometheus remote write, Librato (source or tagged API), or, with none
// configured, stdout. A live view charts the recent buckets (-view, or
// VIEW_USER and VIEW_PASSWORD on PORT).
//
// All configuration comes from the environment; `worker -h` lists every
// variable with its default. Every variable is checked before anything
// starts: a configuration error exits with status 2 and names the variable,
// its value (never a secret's) and what is accepted. On SIGTERM or SIGINT
// (and at the end of stdin with -stdin) the worker stops its inputs (with
// -stdin it first reads to the end of its input), flushes every open bucket,
// sends what is queued, and exits within SHUTDOWN_TIMEOUT.
//
// Usage:
//
//	webapp | worker -stdin                               # local: print per-dyno buckets
//	webapp | worker -stdin -view 127.0.0.1:8080          # … and chart them at http://127.0.0.1:8080/
//	PORT=8080 DRAIN_USER=u DRAIN_PASSWORD=p worker      # HTTPS drain on :8080/logs
//	worker -h                                           # flags and every variable
//	worker -version                                     # from the build information
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
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
	opt := options{stdout: stdout, stderr: stderr, logger: logger}
	opt.view = *viewAddr
	if *useStdin {
		opt.stdin = stdin
		if os.Getenv("METRICS_GRACE") == "" {
			// Bare lines on stdin are stamped as they arrive: none is late,
			// and the first bucket shows sooner.
			cfg.Buckets.Grace = stdinGrace
		}
	}
	// Everything is built and checked before anything starts.
	w, err := newWorker(cfg, opt)
	if err != nil {
		printConfigError(stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := w.run(ctx); err != nil {
		logger.Error("worker stopped", "err", err)
		return 1
	}
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
