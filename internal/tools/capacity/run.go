package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dynometrics/dynometrics/emitter"
	"github.com/dynometrics/dynometrics/internal/testproc"
	"github.com/redis/go-redis/v9"
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
	Sink   int64       // bytes the outlet sink received over the interval
	W      []workerSample
}

// config is one configuration's result.
type config struct {
	Workers, Series int
	Baseline        int64 // used_memory of the empty database before the workers started
	Intervals       []interval
	Paced, Max      counts
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
		if o.Worker, err = goBuild(dir, "worker", "./worker"); err != nil {
			return nil, err
		}
	}
	if o.RedisServer == "" {
		if o.RedisServer = testproc.Find("REDIS_SERVER_BIN", "redis-server"); o.RedisServer == "" {
			return nil, errors.New("redis-server not found (apt-get install redis-server, or set REDIS_SERVER_BIN)")
		}
	}
	redisPort, err := testproc.FreePort()
	if err != nil {
		return nil, err
	}
	redisAddr := "127.0.0.1:" + strconv.Itoa(redisPort)
	srv, err := testproc.Start(exec.CommandContext(ctx, o.RedisServer, "--port", strconv.Itoa(redisPort), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir), 64<<10)
	if err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	defer func() { _ = srv.Stop(os.Interrupt, 10*time.Second) }()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, MaxRetries: -1})
	defer rdb.Close()
	if err := srv.WaitReady(func() bool { return rdb.Ping(ctx).Err() == nil }, 20*time.Millisecond, 10*time.Second); err != nil {
		return nil, fmt.Errorf("redis-server: %w", err)
	}
	if in, err := readInfo(ctx, rdb, "server"); err == nil {
		rep.RedisVersion = in.fields["redis_version"]
	}
	if rep.FrameKeyBytes, err = frameKeyBytes(ctx, rdb); err != nil {
		return nil, fmt.Errorf("measuring a Frame-Id key: %w", err)
	}
	fmt.Fprintf(progress, "redis-server %s on %s; a Frame-Id key takes %.0f bytes\n", rep.RedisVersion, redisAddr, rep.FrameKeyBytes)

	sink := &sink{}
	sinkLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sinkSrv := &http.Server{Handler: sink, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = sinkSrv.Serve(sinkLn) }()
	defer sinkSrv.Close()

	runID := make([]byte, 4)
	_, _ = rand.Read(runID)
	for _, s := range o.Series {
		c, err := newCorpus(s, o.BodyLines)
		if err != nil {
			return rep, err
		}
		for _, n := range o.Workers {
			fmt.Fprintf(progress, "%s  %d worker(s), %d series\n", time.Now().UTC().Format(time.TimeOnly), n, s)
			cfg, err := runConfig(ctx, o, c, n, rdb, redisPort, "http://"+sinkLn.Addr().String(), sink, hex.EncodeToString(runID), progress)
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
func runConfig(ctx context.Context, o options, c *corpus, n int, rdb *redis.Client, redisPort int, sinkURL string, sk *sink, runID string, progress io.Writer) (config, error) {
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
	workers := make([]*workerProc, n)
	defer func() {
		for _, w := range workers {
			if w != nil {
				_ = w.stop(15 * time.Second)
			}
		}
	}()
	started := time.Now()
	var urls []string
	for i := range n {
		w, err := startWorker(ctx, o.Worker, env, newEmissions(o.Resolution, lead))
		if err != nil {
			return cfg, fmt.Errorf("worker %d: %w", i+1, err)
		}
		workers[i] = w
		urls = append(urls, fmt.Sprintf("http://%s:%s@127.0.0.1:%d/logs", drainUser, drainPass, w.port))
	}
	for i, w := range workers {
		if err := w.waitHealthy(30 * time.Second); err != nil {
			return cfg, fmt.Errorf("worker %d: %w", i+1, err)
		}
	}
	ld := &loader{c: c, urls: urls, conns: o.Conns, run: runID}
	pctx, stopPaced := context.WithCancel(ctx)
	defer stopPaced()
	pacedDone := make(chan counts, 1)
	loadStart := time.Now()
	go func() { pacedDone <- ld.load(pctx, o.Rate) }()

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
	var prevSink int64
	for i := 0; i <= o.Buckets; i++ {
		k := first + int64(i)
		if err := sleepUntil(ctx, edge(k)); err != nil {
			return cfg, err
		}
		s, err := readSample(ctx, rdb)
		if err != nil {
			return cfg, err
		}
		cpus := make([]time.Duration, n)
		rss := make([]int64, n)
		for wi, w := range workers {
			cpus[wi], rss[wi], err = procStat(w.cmd.Process.Pid)
			if err != nil {
				return cfg, fmt.Errorf("worker %d: %w", wi+1, err)
			}
		}
		sinkNow := sk.bytes.Load()
		if i > 0 {
			iv := interval{Redis: s.sub(prev), Bodies: ld.bodies.Load(), Sink: sinkNow - prevSink}
			for wi := range workers {
				iv.W = append(iv.W, workerSample{CPU: cpus[wi] - prevCPU[wi], RSS: rss[wi]})
			}
			cfg.Intervals = append(cfg.Intervals, iv)
		}
		prev, prevCPU, prevSink = s, cpus, sinkNow
	}
	stopPaced()
	cfg.Paced = <-pacedDone

	// Ingest: as fast as the workers answer.
	cpu0 := make([]time.Duration, n)
	for wi, w := range workers {
		cpu0[wi], _, _ = procStat(w.cmd.Process.Pid)
	}
	mctx, stopMax := context.WithTimeout(ctx, o.MaxFor)
	cfg.Max = ld.load(mctx, 0)
	stopMax()
	for wi, w := range workers {
		cpu, _, err := procStat(w.cmd.Process.Pid)
		if err != nil {
			return cfg, fmt.Errorf("worker %d: %w", wi+1, err)
		}
		cfg.MaxCPU = append(cfg.MaxCPU, cpu-cpu0[wi])
	}
	// Every measured emission has long arrived (the last one before the
	// ingest phase began).
	for i := range cfg.Intervals {
		k := first + int64(i) + 1
		for wi, w := range workers {
			m := w.em.at(k)
			if m == nil {
				cfg.Lost = append(cfg.Lost, fmt.Sprintf("worker %d, bucket %d", wi+1, i+1))
			}
			cfg.Intervals[i].W[wi].Metrics = m
		}
	}
	for wi, w := range workers {
		if err := w.stop(15 * time.Second); err != nil {
			// Measured already: said in the report, with the worker's log.
			cfg.Notes = append(cfg.Notes, fmt.Sprintf("worker %d at SIGTERM: %v", wi+1, err))
			fmt.Fprintf(progress, "  worker %d at SIGTERM: %v\n%s", wi+1, err, w.em.log())
		}
		workers[wi] = nil
	}
	fmt.Fprintf(progress, "  %s\n", cfg.summaryLine())
	return cfg, nil
}

// sleepUntil waits until t or ctx's end.
func sleepUntil(ctx context.Context, t time.Time) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(t)):
		return nil
	}
}

// readInfo runs INFO with the given sections and parses the reply.
func readInfo(ctx context.Context, rdb *redis.Client, sections ...string) (info, error) {
	s, err := rdb.Info(ctx, sections...).Result()
	if err != nil {
		return info{}, err
	}
	return parseInfo(s)
}

// readSample reads the counters the harness follows.
func readSample(ctx context.Context, rdb *redis.Client) (redisSample, error) {
	at := time.Now()
	in, err := readInfo(ctx, rdb, "commandstats", "stats", "memory", "cpu", "keyspace", "clients")
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

// sink stands in for Librato: it takes every request and counts its bytes.
type sink struct{ bytes, requests atomic.Int64 }

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	s.bytes.Add(n)
	s.requests.Add(1)
	w.WriteHeader(http.StatusOK)
}

// workerProc is one started worker.
type workerProc struct {
	cmd    *exec.Cmd
	port   int
	em     *emissions
	exited chan error
}

// startWorker starts the worker binary on a free port with env; its stdout
// and stderr go to em.
func startWorker(ctx context.Context, bin string, env []string, em *emissions) (*workerProc, error) {
	port, err := testproc.FreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(env, "PORT="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = em, em
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w := &workerProc{cmd: cmd, port: port, em: em, exited: make(chan error, 1)}
	go func() { w.exited <- cmd.Wait() }()
	return w, nil
}

// waitHealthy polls /health until it answers 200.
func (w *workerProc) waitHealthy(timeout time.Duration) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/health", w.port)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-w.exited:
			w.exited <- err
			return fmt.Errorf("exited (%v):\n%s", err, w.em.log())
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not healthy after %v:\n%s", timeout, w.em.log())
}

// stop sends SIGTERM and waits; after timeout it kills.
func (w *workerProc) stop(timeout time.Duration) error {
	select {
	case err := <-w.exited:
		w.exited <- err
		return err
	default:
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-w.exited:
		w.exited <- err
		return err
	case <-time.After(timeout):
		_ = w.cmd.Process.Kill()
		return fmt.Errorf("no exit %v after SIGTERM, killed", timeout)
	}
}

// procStat returns a process's user+system CPU time (/proc/PID/stat) and
// resident memory (/proc/PID/status VmRSS).
func procStat(pid int) (time.Duration, int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	i := bytes.LastIndexByte(b, ')') // the command name may hold spaces
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, 0, errors.New("unexpected /proc/PID/stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, errors.New("unexpected /proc/PID/stat")
	}
	const userHZ = 100 // USER_HZ on every Linux architecture Go supports here
	cpu := time.Duration(utime+stime) * time.Second / userHZ
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return cpu, 0, err
	}
	for _, line := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return cpu, kb << 10, err
		}
	}
	return cpu, 0, errors.New("no VmRSS in /proc/PID/status")
}

// loadavg is /proc/loadavg's first three fields.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// goBuild builds pkg (relative to the module root) into dir/name.
func goBuild(dir, name, pkg string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run capacity inside the dynometrics module")
	}
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = filepath.Dir(mod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}
