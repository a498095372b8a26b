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
