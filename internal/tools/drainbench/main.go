// Command drainbench is the black-box drain benchmark: it runs the built
// worker binary, with and without REDIS_URL (a real redis-server it starts on
// 127.0.0.1), under drainload's load (package load: 8 keep-alive connections,
// 100-line Logplex bodies, unique Frame-Ids, 503s retried as Logplex does),
// in alternating rounds, against a local sink standing in for Librato. Per
// round it reports the lines the worker accepted per second, the POSTs it
// refused (503), and the worker's CPU per line (utime+stime from
// /proc/PID/stat); then the medians of each mode and their ratios.
//
//	go run ./internal/tools/drainbench -rounds 3 -duration 10s
//
// The load generator and the worker share the machine, as they would not in
// production: compare the modes by their ratio within one run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"slices"
	"time"

	"github.com/dynometrics/dynometrics/internal/testproc"
	"github.com/dynometrics/dynometrics/internal/tools/load"
)

// options is what one benchmark does.
type options struct {
	Worker, RedisServer string // binaries; "" builds or finds them
	Rounds              int
	Duration            time.Duration
	Conns, BodyLines    int
}

// round is what one run of one mode measured: the load's counts (Refused:
// POSTs answered 503, then retried) and the worker's user+system CPU.
type round struct {
	Redis bool
	load.Counts
	WorkerCPU time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.Worker, "worker", "", "worker binary (default: go build ./worker)")
	flag.StringVar(&o.RedisServer, "redis-server", "", "redis-server binary (default: $REDIS_SERVER_BIN, else from PATH)")
	flag.IntVar(&o.Rounds, "rounds", 3, "rounds; each runs both modes, in alternating order")
	flag.DurationVar(&o.Duration, "duration", 10*time.Second, "load per run")
	flag.IntVar(&o.Conns, "conns", 8, "client connections")
	flag.IntVar(&o.BodyLines, "body-lines", 100, "lines per POST body")
	flag.Parse()
	ctx := context.Background()
	rounds, err := bench(ctx, o, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "drainbench:", err)
		os.Exit(1)
	}
	summarize(os.Stdout, rounds)
}

// bench builds what it needs, starts Redis and the sink, and runs the rounds.
func bench(ctx context.Context, o options, out io.Writer) ([]round, error) {
	if o.Rounds <= 0 || o.Duration <= 0 || o.Conns <= 0 || o.BodyLines <= 0 {
		return nil, errors.New("rounds, duration, conns and body-lines must be positive")
	}
	dir, err := os.MkdirTemp("", "drainbench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if o.Worker == "" {
		if o.Worker, err = testproc.GoBuild(dir, "./worker"); err != nil {
			return nil, err
		}
	}
	redis, redisPort, err := testproc.StartRedis(ctx, o.RedisServer, dir)
	if err != nil {
		return nil, err
	}
	defer func() { _ = redis.Stop(os.Kill, 5*time.Second) }()
	sink := httptest.NewServer(load.Sink)
	defer sink.Close()

	var rounds []round
	for i := range o.Rounds {
		for _, withRedis := range []bool{i%2 == 1, i%2 == 0} { // rounds 1, 3, …: off first; 2, 4, …: on first
			redisURL := ""
			if withRedis {
				// A database of its own per run: nothing carries over.
				redisURL = fmt.Sprintf("redis://127.0.0.1:%d/%d", redisPort, len(rounds)%16)
			}
			r, err := runOnce(ctx, o, sink.URL, redisURL)
			if err != nil {
				return rounds, fmt.Errorf("round %d (redis %v): %w", i+1, withRedis, err)
			}
			fmt.Fprintf(out, "round %d  %-9s %10.0f lines/s accepted  %7d POSTs refused (503)  %6d failed  %9.0f lines per worker CPU-second\n",
				i+1, mode(r.Redis), r.LinesPerSec(), r.Refused, r.Failed, r.LinesPerCPUSecond(r.WorkerCPU))
			rounds = append(rounds, r)
		}
	}
	return rounds, nil
}

func mode(redis bool) string {
	if redis {
		return "redis on"
	}
	return "redis off"
}

// runOnce starts the worker, loads it for o.Duration and stops it.
func runOnce(ctx context.Context, o options, sinkURL, redisURL string) (round, error) {
	r := round{Redis: redisURL != ""}
	const user, pass = "bench", "bench-drain-password"
	w, port, err := testproc.StartWorker(ctx, o.Worker, append(os.Environ(),
		"DRAIN_USER="+user, "DRAIN_PASSWORD="+pass,
		"LIBRATO_USER=bench", "LIBRATO_TOKEN=bench-token", "LIBRATO_URL="+sinkURL,
		"REDIS_URL="+redisURL), nil)
	if err != nil {
		return r, err
	}
	defer func() { _ = w.Stop(os.Kill, 5*time.Second) }() // returns at once when already stopped
	cpu0, _, err := testproc.Stat(w.Cmd.Process.Pid)
	if err != nil {
		return r, fmt.Errorf("worker CPU time: %w", err)
	}
	bodies := load.MixedBodies(16, o.BodyLines) // as drainload's
	ld := &load.Loader{URLs: []string{fmt.Sprintf("http://%s:%s@127.0.0.1:%d/logs", user, pass, port)}, Conns: o.Conns,
		Body: func(n int64, _ []byte) ([]byte, int) { return bodies[n%int64(len(bodies))], o.BodyLines }}
	lctx, stop := context.WithTimeout(ctx, o.Duration)
	r.Counts = ld.Run(lctx)
	stop()
	cpu1, _, err := testproc.Stat(w.Cmd.Process.Pid)
	if err != nil {
		return r, fmt.Errorf("worker CPU time: %w", err)
	}
	r.WorkerCPU = cpu1 - cpu0
	_ = w.Stop(os.Interrupt, 30*time.Second)
	return r, nil
}

// summarize prints each mode's medians and their ratios (on / off).
func summarize(w io.Writer, rounds []round) {
	med := func(redis bool, f func(round) float64) float64 {
		var v []float64
		for _, r := range rounds {
			if r.Redis == redis {
				v = append(v, f(r))
			}
		}
		if len(v) == 0 {
			return 0
		}
		slices.Sort(v)
		return (v[(len(v)-1)/2] + v[len(v)/2]) / 2 // the middle value, or the mean of the two
	}
	rate := round.LinesPerSec
	refused := func(r round) float64 { return float64(r.Refused) }
	eff := func(r round) float64 { return r.LinesPerCPUSecond(r.WorkerCPU) }
	off, on := med(false, rate), med(true, rate)
	fmt.Fprintf(w, "median    redis off %10.0f lines/s, %7.0f refused, %9.0f lines per worker CPU-second\n", off, med(false, refused), med(false, eff))
	fmt.Fprintf(w, "median    redis on  %10.0f lines/s, %7.0f refused, %9.0f lines per worker CPU-second\n", on, med(true, refused), med(true, eff))
	if off > 0 && med(false, eff) > 0 {
		fmt.Fprintf(w, "ratio     on/off    %.2f× lines/s, %.2f× lines per CPU-second\n", on/off, med(true, eff)/med(false, eff))
	}
}
