// Command drainbench is the black-box drain benchmark: it runs the built
// worker binary, with and without REDIS_URL (a real redis-server it starts on
// 127.0.0.1), under the same load from drainload (8 keep-alive connections,
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
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dynometrics/dynometrics/internal/testproc"
)

// options is what one benchmark does.
type options struct {
	Worker, Drainload, RedisServer string // binaries; "" builds or finds them
	Rounds                         int
	Duration                       time.Duration
	Conns, BodyLines               int
}

// round is what one run of one mode measured.
type round struct {
	Redis       bool
	Lines       int64         // lines accepted (answered 2xx)
	Posts       int64         // POSTs accepted
	Refused     int64         // POSTs answered 503 (then retried)
	Failed      int64         // POSTs given up on
	Elapsed     time.Duration // sending time
	WorkerCPU   time.Duration // the worker's user+system CPU during the run
	LinesPerSec float64
}

// LinesPerCPUSecond is the worker's efficiency.
func (r round) LinesPerCPUSecond() float64 {
	if r.WorkerCPU <= 0 {
		return 0
	}
	return float64(r.Lines) / r.WorkerCPU.Seconds()
}

func main() {
	var o options
	flag.StringVar(&o.Worker, "worker", "", "worker binary (default: go build ./worker)")
	flag.StringVar(&o.Drainload, "drainload", "", "drainload binary (default: go build ./internal/tools/drainload)")
	flag.StringVar(&o.RedisServer, "redis-server", "", "redis-server binary (default: from PATH)")
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
		if o.Worker, err = goBuild(dir, "worker", "./worker"); err != nil {
			return nil, err
		}
	}
	if o.Drainload == "" {
		if o.Drainload, err = goBuild(dir, "drainload", "./internal/tools/drainload"); err != nil {
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
	redisAddr := fmt.Sprintf("127.0.0.1:%d", redisPort)
	redis, err := testproc.Start(exec.CommandContext(ctx, o.RedisServer, "--port", strconv.Itoa(redisPort), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir), 64<<10)
	if err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	defer func() { _ = redis.Stop(os.Kill, 5*time.Second) }()
	if err := redis.WaitReady(func() bool {
		c, err := net.DialTimeout("tcp", redisAddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 20*time.Millisecond, 10*time.Second); err != nil {
		return nil, fmt.Errorf("redis-server: %w", err)
	}

	// The sink stands in for Librato: it takes every batch, so that delivery
	// costs the worker what it would, and nothing waits on a slow receiver.
	sinkLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sink := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = sink.Serve(sinkLn) }()
	defer sink.Close()

	var rounds []round
	for i := range o.Rounds {
		modes := []bool{false, true}
		if i%2 == 1 {
			modes = []bool{true, false}
		}
		for _, withRedis := range modes {
			redisURL := ""
			if withRedis {
				// A database of its own per run: nothing carries over.
				redisURL = fmt.Sprintf("redis://127.0.0.1:%d/%d", redisPort, len(rounds)%16)
			}
			r, err := runOnce(ctx, o, "http://"+sinkLn.Addr().String(), redisURL, dir)
			if err != nil {
				return rounds, fmt.Errorf("round %d (redis %v): %w", i+1, withRedis, err)
			}
			fmt.Fprintf(out, "round %d  %-9s %10.0f lines/s accepted  %7d POSTs refused (503)  %6d failed  %9.0f lines per worker CPU-second\n",
				i+1, mode(r.Redis), r.LinesPerSec, r.Refused, r.Failed, r.LinesPerCPUSecond())
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
func runOnce(ctx context.Context, o options, sinkURL, redisURL, dir string) (round, error) {
	r := round{Redis: redisURL != ""}
	port, err := testproc.FreePort()
	if err != nil {
		return r, err
	}
	const user, pass = "bench", "bench-drain-password"
	cmd := exec.CommandContext(ctx, o.Worker)
	cmd.Env = append(os.Environ(),
		"PORT="+strconv.Itoa(port), "DRAIN_USER="+user, "DRAIN_PASSWORD="+pass,
		"LIBRATO_USER=bench", "LIBRATO_TOKEN=bench-token", "LIBRATO_URL="+sinkURL,
		"REDIS_URL="+redisURL)
	w, err := testproc.Start(cmd, 64<<10)
	if err != nil {
		return r, fmt.Errorf("start worker: %w", err)
	}
	defer func() { _ = w.Stop(os.Kill, 5*time.Second) }() // returns at once when already stopped
	health := fmt.Sprintf("http://127.0.0.1:%d/health", port)
	if err := w.WaitReady(func() bool {
		resp, err := http.Get(health)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 50*time.Millisecond, 30*time.Second); err != nil {
		return r, fmt.Errorf("worker: %w", err)
	}
	cpu0, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	load := exec.CommandContext(ctx, o.Drainload,
		"-url", fmt.Sprintf("http://%s:%s@127.0.0.1:%d/logs", user, pass, port),
		"-conns", strconv.Itoa(o.Conns), "-body-lines", strconv.Itoa(o.BodyLines),
		"-lines", "1000000000000", "-duration", o.Duration.String())
	report, err := load.CombinedOutput()
	if err != nil && len(report) == 0 {
		return r, fmt.Errorf("drainload: %w", err)
	}
	cpu1, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	r.WorkerCPU = cpu1 - cpu0
	if err := parseReport(string(report), &r); err != nil {
		return r, fmt.Errorf("%w\n%s", err, report)
	}
	_ = w.Stop(os.Interrupt, 30*time.Second)
	return r, nil
}

// sentLine is drainload's report line for a run against -url.
var sentLine = regexp.MustCompile(`sent\s+(\d+) lines in (\d+) POSTs in (\S+) \(\d+ lines/s\); 503 retries (\d+), error retries \d+, failed POSTs (\d+)`)

// parseReport reads drainload's report into r.
func parseReport(report string, r *round) error {
	m := sentLine.FindStringSubmatch(report)
	if m == nil {
		return errors.New("drainload printed no 'sent' line")
	}
	r.Lines, _ = strconv.ParseInt(m[1], 10, 64)
	r.Posts, _ = strconv.ParseInt(m[2], 10, 64)
	d, err := time.ParseDuration(m[3])
	if err != nil || d <= 0 {
		return fmt.Errorf("drainload's send time %q: %v", m[3], err)
	}
	r.Elapsed = d
	r.Refused, _ = strconv.ParseInt(m[4], 10, 64)
	r.Failed, _ = strconv.ParseInt(m[5], 10, 64)
	r.LinesPerSec = float64(r.Lines) / d.Seconds()
	return nil
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
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	rate := func(r round) float64 { return r.LinesPerSec }
	refused := func(r round) float64 { return float64(r.Refused) }
	eff := func(r round) float64 { return r.LinesPerCPUSecond() }
	off, on := med(false, rate), med(true, rate)
	fmt.Fprintf(w, "median    redis off %10.0f lines/s, %7.0f refused, %9.0f lines per worker CPU-second\n", off, med(false, refused), med(false, eff))
	fmt.Fprintf(w, "median    redis on  %10.0f lines/s, %7.0f refused, %9.0f lines per worker CPU-second\n", on, med(true, refused), med(true, eff))
	if off > 0 && med(false, eff) > 0 {
		fmt.Fprintf(w, "ratio     on/off    %.2f× lines/s, %.2f× lines per CPU-second\n", on/off, med(true, eff)/med(false, eff))
	}
}

// goBuild builds pkg (relative to the module root) into dir/name.
func goBuild(dir, name, pkg string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// moduleRoot is the directory of the main module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run drainbench inside the dynometrics module")
	}
	return filepath.Dir(mod), nil
}

// procCPU is a process's user+system CPU time from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("worker CPU time: %w", err)
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("worker CPU time: unexpected /proc/PID/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("worker CPU time: short /proc/PID/stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("worker CPU time: unexpected /proc/PID/stat")
	}
	// Linux reports clock ticks of USER_HZ, 100 per second on every
	// architecture Go supports here.
	const userHZ = 100
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}
