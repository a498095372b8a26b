// Command capacity is the shared-state capacity harness (issue 18 item 5):
// it starts 1, 2 and 4 built worker processes against one real
// redis-server (127.0.0.1, started and stopped here), feeds their Logplex
// drains bodies that carry a given number of distinct series (10,000 and
// 100,000 by default) in every bucket, and measures per configuration:
//
//   - per bucket, at a steady paced load (-rate lines/s over all workers):
//     each worker's flush time (its self-metric worker.redis.flush_ms) and
//     CPU time, the commands it sent (worker.redis.commands), the Redis
//     commands run (INFO commandstats, scripts' own commands included),
//     Redis CPU (INFO cpu), bytes into and out of Redis (INFO stats
//     total_net_input/output_bytes), Redis memory (used_memory over an
//     empty database, split into the Frame-Id keys and the rest), the
//     workers' RSS and the (partition, bucket)s flushed;
//   - ingest: the lines per second the workers accept when loaded as fast
//     as they answer (-max-for), and the POSTs they refuse (503).
//
// Buckets are short (-resolution, default 10s) so that the whole matrix
// runs in about six minutes; -quick runs a smaller one in under a minute:
//
//	go run ./internal/tools/capacity            # the matrix of docs/performance.md
//	go run ./internal/tools/capacity -quick     # smoke check
//
// The worker's emitter prints its self-metrics just before every multiple of
// METRICS_RESOLUTION; the harness reads Redis at the same moments, so each
// interval holds one bucket's flush (at its end + METRICS_GRACE) and one
// bucket's worth of hand-overs, lease rounds and Frame-Id checks. The load
// generator, redis-server and the workers share the machine's cores: quote
// comparisons from one run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options is what one harness run does.
type options struct {
	Worker, RedisServer string // binaries; "" builds / finds them
	Workers             []int  // worker processes per configuration
	Series              []int  // distinct series per bucket per configuration
	Resolution, Grace   time.Duration
	Handover            time.Duration // REDIS_HANDOVER
	Buckets             int           // measured buckets per configuration
	Rate                float64       // lines per second of the paced phase, all workers together
	MaxFor              time.Duration // the as-fast-as-possible phase
	Conns, BodyLines    int
	Partitions          int  // REDIS_PARTITIONS
	Balance             bool // REDIS_BALANCE
	Outlet              string
	Settle              time.Duration // from the workers' start to the first measured flush
}

// defaults are the full matrix (docs/performance.md).
func defaults() options {
	return options{
		Workers: []int{1, 2, 4}, Series: []int{10_000, 100_000},
		Resolution: 10 * time.Second, Grace: 3 * time.Second, Handover: 2 * time.Second,
		Buckets: 3, Rate: 20_000, MaxFor: 8 * time.Second,
		Conns: 8, BodyLines: 100, Partitions: 16, Balance: true, Outlet: "librato",
		Settle: 6 * time.Second,
	}
}

// quick is the smoke check: well under a minute.
func quick(o options) options {
	o.Workers, o.Series = []int{1, 2}, []int{2_000}
	o.Resolution, o.Grace, o.Handover = 4*time.Second, time.Second, 500*time.Millisecond
	o.Buckets, o.MaxFor, o.Rate = 1, 2*time.Second, 5_000
	o.Settle = 4 * time.Second
	return o
}

func main() {
	o := defaults()
	var isQuick bool
	flag.BoolVar(&isQuick, "quick", false, "smoke check: 1 and 2 workers, 2,000 series, 4s buckets, one measured bucket (flags given after -quick still apply)")
	flag.StringVar(&o.Worker, "worker", "", "worker binary (default: go build ./worker)")
	flag.StringVar(&o.RedisServer, "redis-server", "", "redis-server binary (default: $REDIS_SERVER_BIN, else from PATH)")
	flag.Func("workers", "worker processes per configuration, comma-separated (default 1,2,4)", intList(&o.Workers))
	flag.Func("series", "distinct series per bucket, comma-separated multiples of 10 (default 10000,100000)", intList(&o.Series))
	flag.DurationVar(&o.Resolution, "resolution", o.Resolution, "METRICS_RESOLUTION: the bucket")
	flag.DurationVar(&o.Grace, "grace", o.Grace, "METRICS_GRACE")
	flag.DurationVar(&o.Handover, "handover", o.Handover, "REDIS_HANDOVER")
	flag.IntVar(&o.Buckets, "buckets", o.Buckets, "measured buckets per configuration")
	flag.Float64Var(&o.Rate, "rate", o.Rate, "lines per second of the paced phase, over all workers")
	flag.DurationVar(&o.MaxFor, "max-for", o.MaxFor, "length of the as-fast-as-possible ingest phase")
	flag.IntVar(&o.Conns, "conns", o.Conns, "drain connections, spread over the workers")
	flag.IntVar(&o.BodyLines, "body-lines", o.BodyLines, "lines per POST body")
	flag.IntVar(&o.Partitions, "partitions", o.Partitions, "REDIS_PARTITIONS")
	flag.BoolVar(&o.Balance, "balance", o.Balance, "REDIS_BALANCE: spread the partitions' flush leases over the workers")
	flag.StringVar(&o.Outlet, "outlet", o.Outlet, "librato (a local sink that takes every request) or console (stdout, read and discarded)")
	flag.Parse()
	if isQuick { // then the flags again: they win over -quick
		o = quick(o)
		flag.Parse()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := harness(ctx, o, os.Stderr)
	if rep != nil {
		rep.print(os.Stdout, strings.Join(os.Args, " "))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "capacity:", err)
		os.Exit(1)
	}
}

// intList parses a flag's "1,2,4" into dst.
func intList(dst *[]int) func(string) error {
	return func(s string) error {
		*dst = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				return fmt.Errorf("%q is not a positive number", f)
			}
			*dst = append(*dst, n)
		}
		return nil
	}
}
