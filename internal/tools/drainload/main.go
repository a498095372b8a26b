// Command drainload is a load generator for the HTTPS drain. By default it
// starts the real drain handler (drain.Server + drain.Handler + the real
// logplex/l2met parser, feeding a counting sink) on 127.0.0.1, then N
// keep-alive client goroutines POST Logplex bodies of 100 realistic lines
// (about 200 bytes each, mixed kinds: app count/measure/sample lines, router
// lines, runtime metrics, add-on metrics) until a line count or a time limit
// is reached. It reports lines/s and the resident memory (from
// /proc/self/stat, sampled during the run), and exits non-zero unless every
// line sent was counted by the sink.
//
//	go run ./internal/tools/drainload -conns 8 -lines 5000000 -duration 20s
//	go run ./internal/tools/drainload -url https://user:pass@app.herokuapp.com/logs -lines 100000
//
// With -url it POSTs to a running worker instead and can only check that every
// POST was answered 2xx. A 503 is retried with the same Logplex-Frame-Id, as
// Logplex does.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"time"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.URL, "url", "", "POST to this drain URL (with user:password@) instead of an in-process drain")
	flag.IntVar(&cfg.Conns, "conns", 8, "client connections (goroutines)")
	flag.Int64Var(&cfg.Lines, "lines", 5_000_000, "stop after this many lines")
	flag.DurationVar(&cfg.Duration, "duration", 30*time.Second, "stop after this long")
	flag.IntVar(&cfg.BodyLines, "body-lines", 100, "lines per POST body")
	flag.IntVar(&cfg.Workers, "workers", 0, "in-process drain parsing goroutines (0: GOMAXPROCS)")
	flag.IntVar(&cfg.MaxConns, "max-conns", 0, "in-process server connection bound (0: input.DefaultMaxConns)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "drainload:", err)
			os.Exit(2)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "drainload:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// errMismatch is returned when the sink did not count every line sent.
var errMismatch = errors.New("not every line sent was counted")

// report prints a result.
func report(w io.Writer, cfg config, r result) {
	where := "in-process drain on " + r.Addr
	if cfg.URL != "" {
		where = r.Addr
	}
	fmt.Fprintf(w, "drainload: %s, %d connections, %d lines/body\n", where, cfg.Conns, cfg.BodyLines)
	fmt.Fprintf(w, "sent     %d lines in %d POSTs in %v (%.0f lines/s); 503 retries %d, error retries %d, failed POSTs %d\n",
		r.Lines, r.Posts, r.Elapsed.Round(time.Millisecond), float64(r.Lines)/r.Elapsed.Seconds(), r.Refused, r.ErrRetries, r.Failed)
	if cfg.URL == "" {
		fmt.Fprintf(w, "counted  %d lines, %d measurements (want %d) in %v: %.0f lines/s\n",
			r.Counted, r.Measurements, r.WantMeasurements, r.Total.Round(time.Millisecond), r.LinesPerSec)
		fmt.Fprintf(w, "rejected %d lines, %d malformed frames, %d bad headers, %d duplicates\n",
			r.Rejected, r.Malformed, r.BadHeaders, r.Duplicates)
	}
	if r.CPU > 0 && r.Lines > 0 {
		fmt.Fprintf(w, "CPU      %v user+sys (%.2f cores busy on average), %.2f µs per line: %.0f lines per CPU-second (client and server together)\n",
			r.CPU.Round(time.Millisecond), r.CPU.Seconds()/r.Total.Seconds(), float64(r.CPU.Microseconds())/float64(r.Lines), r.LinesPerCPUSecond(r.CPU))
	}
	fmt.Fprintf(w, "VmRSS    start %s, min %s, max %s, end %s (%d samples)\n",
		mib(r.RSS.Start), mib(r.RSS.Min), mib(r.RSS.Max), mib(r.RSS.End), r.RSS.Samples)
	fmt.Fprintf(w, "VmRSS    per second: %s\n", r.RSS.PerSecond)
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }
