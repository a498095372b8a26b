// Command worker is the dynometrics worker: it consumes a Heroku-style app's
// log stream (an HTTPS drain with Logplex framing, a syslog drain, stdin, or
// the app's own Platform API log session), parses the l2met conventions and the
// platform's own lines, aggregates them into time buckets per metric and per
// dyno, and forwards every bucket to the configured outlets: Librato (source or
// tagged API), Prometheus remote write, or, with none configured, stdout.
//
// All configuration comes from the environment; `worker -h` lists every
// variable with its default. On SIGTERM or SIGINT (and at the end of stdin with
// -stdin) the worker stops its inputs, flushes every open bucket, sends what is
// queued, and exits within SHUTDOWN_TIMEOUT.
//
// Usage:
//
//	webapp | worker -stdin                               # local: print per-dyno buckets
//	webapp | worker -stdin -view 127.0.0.1:8080          # … and chart them at http://127.0.0.1:8080/
//	PORT=8080 DRAIN_USER=u DRAIN_PASSWORD=p worker      # HTTPS drain on :8080/logs
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func realMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	useStdin := fs.Bool("stdin", false, "read log lines from standard input: bare app lines, heroku-logs lines or syslog lines")
	viewAddr := fs.String("view", "", "serve the live view (charts per dyno and for the whole app) on this address, e.g. 127.0.0.1:8080; works in every mode, -stdin included")
	fs.Usage = func() {
		printUsage(stderr, func(w io.Writer) { fs.SetOutput(w); fs.PrintDefaults() })
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "worker: unexpected argument %q (configuration comes from the environment; see worker -h)\n", fs.Arg(0))
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	cfg, err := loadConfig()
	if err != nil {
		fmt.Fprintf(stderr, "worker: %v\n", err)
		return 2
	}
	opt := options{stdout: stdout, logger: logger}
	opt.view = *viewAddr
	if *useStdin {
		opt.stdin = stdin
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, opt); err != nil {
		logger.Error("worker stopped", "err", err)
		return 1
	}
	return 0
}
