package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dynometrics/dynometrics/emitter"
	"github.com/dynometrics/dynometrics/internal/testproc"
	"github.com/dynometrics/dynometrics/internal/tools/load"
)

const drainUser, drainPass = "capacity", "capacity-drain-password"

// workerSample is one worker over one measured interval.
type workerSample struct {
	Metrics map[string]float64 // its emission at the interval's end (changes over the interval; gauges: current)
	CPU     time.Duration      // user+system CPU over the interval
	RSS     int64              // VmRSS at the interval's end, bytes
}

// interval is one measured bucket's interval.
type interval struct {
	Redis  redisSample // changes over the interval; UsedMemory and Keys at its end
	Bodies int64       // bodies accepted since the configuration started (their Frame-Id keys are in Redis)
	W      []workerSample
}

// config is one configuration's result.
type config struct {
	Workers, Series int
	Baseline        int64 // used_memory of the empty database before the workers started
	Intervals       []interval
	Paced, Max      load.Counts
	MaxCPU          []time.Duration // each worker's CPU over the max phase
	Lost            []string        // workers whose emission of a measured interval was missing
	Notes           []string        // what else went wrong after the measurement
}

// report is a whole run.
type report struct {
	Opt           options
	Started       time.Time
	Took          time.Duration
	LoadBefore    string // /proc/loadavg at the start and end
	LoadAfter     string
	FrameKeyBytes float64 // measured bytes of one Frame-Id key
	RedisVersion  string
	Configs       []config
}

// harness builds what it needs, starts Redis and the sink, and runs every
// configuration in turn.
func harness(ctx context.Context, o options, progress io.Writer) (*report, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	rep := &report{Opt: o, Started: time.Now().UTC(), LoadBefore: loadavg()}
	dir, err := os.MkdirTemp("", "capacity")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if o.Worker == "" {
		fmt.Fprintln(progress, "building ./worker")
		if o.Worker, err = testproc.GoBuild(dir, "./worker"); err != nil {
			return nil, err
		}
	}
	srv, redisPort, err := testproc.StartRedis(ctx, o.RedisServer, dir)
	if err != nil {
		return nil, err
	}
	defer func() { _ = srv.Stop(os.Interrupt, 10*time.Second) }()
	redisAddr := "127.0.0.1:" + strconv.Itoa(redisPort)
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, MaxRetries: -1})
	defer rdb.Close()
	rep.RedisVersion = rdb.InfoMap(ctx, "server").Item("Server", "redis_version")
	if rep.FrameKeyBytes, err = frameKeyBytes(ctx, rdb); err != nil {
		return nil, fmt.Errorf("measuring a Frame-Id key: %w", err)
	}
	fmt.Fprintf(progress, "redis-server %s on %s; a Frame-Id key takes %.0f bytes\n", rep.RedisVersion, redisAddr, rep.FrameKeyBytes)

	sink := httptest.NewServer(load.Sink)
	defer sink.Close()
	for _, s := range o.Series {
		c, err := newCorpus(s, o.BodyLines)
		if err != nil {
			return rep, err
		}
		for _, n := range o.Workers {
			fmt.Fprintf(progress, "%s  %d worker(s), %d series\n", time.Now().UTC().Format(time.TimeOnly), n, s)
			cfg, err := runConfig(ctx, o, c, n, rdb, redisPort, sink.URL, progress)
			if err != nil {
				return rep, fmt.Errorf("%d worker(s), %d series: %w", n, s, err)
			}
			rep.Configs = append(rep.Configs, cfg)
		}
	}
	rep.Took = time.Since(rep.Started)
	rep.LoadAfter = loadavg()
	return rep, nil
}

func (o options) validate() error {
	switch {
	case len(o.Workers) == 0 || len(o.Series) == 0:
		return errors.New("no configuration: -workers and -series must name at least one each")
	case o.Resolution < time.Second || o.Resolution%time.Second != 0:
		return errors.New("-resolution: whole seconds, at least 1s")
	case o.Handover <= 0 || o.Handover >= o.Grace:
		return errors.New("-handover must be positive and shorter than -grace")
	case o.Grace+time.Second+emitter.AlignLead(o.Resolution) >= o.Resolution:
		return errors.New("-grace plus a second must fit in -resolution (each measured interval must hold its bucket's flush)")
	case o.Buckets <= 0 || o.Rate <= 0 || o.MaxFor <= 0 || o.Conns <= 0 || o.BodyLines <= 0 || o.Partitions <= 0:
		return errors.New("-buckets, -rate, -max-for, -conns, -body-lines and -partitions must be positive")
	case o.Outlet != "librato" && o.Outlet != "console":
		return fmt.Errorf("-outlet %q: want librato or console", o.Outlet)
	}
	return nil
}

// runConfig runs n workers on an emptied Redis: the paced phase with its
// measured buckets, then the ingest phase.
func runConfig(ctx context.Context, o options, c *corpus, n int, rdb *redis.Client, redisPort int, sinkURL string, progress io.Writer) (config, error) {
	cfg := config{Workers: n, Series: c.series}
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return cfg, err
	}
	base, err := readSample(ctx, rdb)
	if err != nil {
		return cfg, err
	}
	cfg.Baseline = base.UsedMemory

	lead := emitter.AlignLead(o.Resolution)
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(),
		"DRAIN_USER=" + drainUser, "DRAIN_PASSWORD=" + drainPass,
		"REDIS_URL=" + fmt.Sprintf("redis://127.0.0.1:%d/0", redisPort),
		"REDIS_BALANCE=" + strconv.FormatBool(o.Balance), "REDIS_PARTITIONS=" + strconv.Itoa(o.Partitions),
		"REDIS_HANDOVER=" + o.Handover.String(),
		"METRICS_RESOLUTION=" + o.Resolution.String(), "METRICS_GRACE=" + o.Grace.String(),
		"SHUTDOWN_TIMEOUT=10s",
	}
	if o.Outlet == "librato" {
		env = append(env, "LIBRATO_USER=capacity", "LIBRATO_TOKEN=capacity-token", "LIBRATO_URL="+sinkURL)
	}
	var workers []*testproc.Proc
	var ems []*emissions
	defer func() {
		for _, w := range workers {
			_ = w.Stop(syscall.SIGTERM, 15*time.Second)
		}
	}()
	started := time.Now()
	var urls []string
	for i := range n {
		em := newEmissions(o.Resolution, lead)
		w, port, err := testproc.StartWorker(ctx, o.Worker, env, em)
		if err != nil {
			return cfg, fmt.Errorf("worker %d: %w", i+1, err)
		}
		workers, ems = append(workers, w), append(ems, em)
		urls = append(urls, fmt.Sprintf("http://%s:%s@127.0.0.1:%d/logs", drainUser, drainPass, port))
	}
	// stat reads every worker's CPU time so far and RSS.
	stat := func() (cpus []time.Duration, rss []int64, err error) {
		cpus, rss = make([]time.Duration, n), make([]int64, n)
		for wi, w := range workers {
			if cpus[wi], rss[wi], err = testproc.Stat(w.Cmd.Process.Pid); err != nil {
				return nil, nil, fmt.Errorf("worker %d: %w", wi+1, err)
			}
		}
		return cpus, rss, nil
	}
	var bodies atomic.Int64 // accepted since the start: their Frame-Id keys are in Redis
	ld := &load.Loader{URLs: urls, Conns: o.Conns, Rate: o.Rate / float64(c.lines[0]), OK: func(int64) { bodies.Add(1) },
		Body: func(n int64, buf []byte) ([]byte, int) {
			b := int(n % int64(len(c.bodies)))
			return c.stamp(buf, b, time.Now()), c.lines[b]
		}}
	pctx, stopPaced := context.WithCancel(ctx)
	defer stopPaced()
	pacedDone := make(chan load.Counts, 1)
	loadStart := time.Now()
	go func() { pacedDone <- ld.Run(pctx) }()

	// The first measured bucket starts after the load did, and its flush
	// comes once the leases are balanced and settled.
	res := o.Resolution
	j := loadStart.Add(200*time.Millisecond+res-1).UnixNano() / res.Nanoseconds()
	for time.Unix(0, (j+1)*res.Nanoseconds()).Add(o.Grace).Before(started.Add(o.Settle)) {
		j++
	}
	edge := func(k int64) time.Time { return time.Unix(0, k*res.Nanoseconds()).Add(-lead) }
	first := j + 1 // the samples are taken at edge(first) … edge(first+Buckets)
	fmt.Fprintf(progress, "  measuring the buckets of %s … %s\n",
		time.Unix(0, j*res.Nanoseconds()).UTC().Format(time.TimeOnly), time.Unix(0, (j+int64(o.Buckets))*res.Nanoseconds()).UTC().Format(time.TimeOnly))
	var prev redisSample
	var prevCPU []time.Duration
	for i := 0; i <= o.Buckets; i++ {
		select {
		case <-ctx.Done():
			return cfg, ctx.Err()
		case <-time.After(time.Until(edge(first + int64(i)))):
		}
		s, err := readSample(ctx, rdb)
		if err != nil {
			return cfg, err
		}
		cpus, rss, err := stat()
		if err != nil {
			return cfg, err
		}
		if i > 0 {
			iv := interval{Redis: s.sub(prev), Bodies: bodies.Load()}
			for wi := range workers {
				iv.W = append(iv.W, workerSample{CPU: cpus[wi] - prevCPU[wi], RSS: rss[wi]})
			}
			cfg.Intervals = append(cfg.Intervals, iv)
		}
		prev, prevCPU = s, cpus
	}
	stopPaced()
	cfg.Paced = <-pacedDone

	// Ingest: as fast as the workers answer.
	cpu0, _, err := stat()
	if err != nil {
		return cfg, err
	}
	mctx, stopMax := context.WithTimeout(ctx, o.MaxFor)
	ld.Rate = 0
	cfg.Max = ld.Run(mctx)
	stopMax()
	cpu1, _, err := stat()
	if err != nil {
		return cfg, err
	}
	for wi := range workers {
		cfg.MaxCPU = append(cfg.MaxCPU, cpu1[wi]-cpu0[wi])
	}
	// Every measured emission has long arrived (the last one before the
	// ingest phase began).
	for i := range cfg.Intervals {
		for wi, em := range ems {
			m := em.at(first + int64(i) + 1)
			if m == nil {
				cfg.Lost = append(cfg.Lost, fmt.Sprintf("worker %d, bucket %d", wi+1, i+1))
			}
			cfg.Intervals[i].W[wi].Metrics = m
		}
	}
	for wi, w := range workers {
		err := w.Stop(syscall.SIGTERM, 15*time.Second)
		if err == nil && !w.Cmd.ProcessState.Success() {
			err = errors.New(w.Cmd.ProcessState.String())
		}
		if err != nil {
			// Measured already: said in the report, with the worker's log.
			cfg.Notes = append(cfg.Notes, fmt.Sprintf("worker %d at SIGTERM: %v", wi+1, err))
			fmt.Fprintf(progress, "  worker %d at SIGTERM: %v\n%s", wi+1, err, w.Log.String())
		}
	}
	sum := cfg.summarize(0, 0)
	fmt.Fprintf(progress, "  flush per bucket %.0f ms (slowest worker), Redis %.0f commands and %.0f ms CPU per bucket, ingest %.0f lines/s (%d refused)\n",
		sum.FlushMax, sum.Calls, sum.RedisCPU, cfg.Max.LinesPerSec(), cfg.Max.Refused)
	return cfg, nil
}

// readSample reads the counters the harness follows.
func readSample(ctx context.Context, rdb *redis.Client) (redisSample, error) {
	at := time.Now()
	s, err := rdb.Info(ctx, "commandstats", "stats", "memory", "cpu", "keyspace", "clients").Result()
	if err != nil {
		return redisSample{}, err
	}
	in, err := parseInfo(s)
	if err != nil {
		return redisSample{}, err
	}
	return sampleOf(in, at)
}

// frameKeyBytes measures what one Frame-Id key costs Redis: it sets
// 100,000 keys as the workers do (SET dm:frame:<32 hex> 1 NX EX 300) and
// divides the growth of used_memory; then it empties the database.
func frameKeyBytes(ctx context.Context, rdb *redis.Client) (float64, error) {
	const n, batch = 100_000, 5_000
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return 0, err
	}
	before, err := readSample(ctx, rdb)
	if err != nil {
		return 0, err
	}
	for i := 0; i < n; i += batch {
		pipe := rdb.Pipeline()
		for k := i; k < i+batch; k++ {
			pipe.SetNX(ctx, fmt.Sprintf("dm:frame:%032x", k), "1", 5*time.Minute)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return 0, err
		}
	}
	after, err := readSample(ctx, rdb)
	if err != nil {
		return 0, err
	}
	if after.Keys != n {
		return 0, fmt.Errorf("%d keys after setting %d", after.Keys, n)
	}
	return float64(after.UsedMemory-before.UsedMemory) / n, rdb.FlushAll(ctx).Err()
}

// loadavg is /proc/loadavg's first three fields.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}
