package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// summary is one configuration's measured buckets, averaged per bucket.
type summary struct {
	FlushMax, FlushMean float64 // flush ms per bucket: the slowest worker's, the workers' mean
	WorkerCPU           float64 // CPU ms per bucket, the workers' mean
	Flushed, Want       float64 // (partition, bucket)s flushed over the measured buckets; expected
	ClientCmds          float64 // commands the workers sent, all together
	Calls, Scripts      float64 // commands Redis ran (scripts' own included); script runs
	RedisCPU            float64 // ms
	NetIn, NetOut       float64 // bytes
	Mem, Frames         float64 // used_memory over the empty database; of it, the Frame-Id keys (estimated)
	PerSeries           float64 // (Mem − Frames) / series
	RSSMax              int64
	Conns               int64   // connections to Redis, the most seen, less the harness's own
	Leases              string  // each worker's leases at the last measured bucket
	Lines               float64 // lines the workers took per bucket
	Drops               map[string]float64
	Errors              map[string]float64 // failed Redis steps and sends (retried), by self-metric
}

// isDrop says whether a self-metric counts data dropped, refused or late.
func isDrop(name string) bool {
	return strings.Contains(name, "dropped") || strings.Contains(name, ".late_") || strings.HasSuffix(name, ".late") ||
		strings.HasSuffix(name, ".saturated") || strings.HasSuffix(name, ".queue_full")
}

// isError says whether a self-metric counts failed steps (retried).
func isError(name string) bool {
	return strings.Contains(name, "errors") || strings.HasSuffix(name, "_failures") || strings.HasSuffix(name, ".fenced")
}

// summarize averages the measured intervals of c.
func (c config) summarize(partitions int, frameKeyBytes float64) summary {
	s := summary{Drops: map[string]float64{}, Errors: map[string]float64{}}
	n := float64(len(c.Intervals))
	if n == 0 {
		return s
	}
	for i, iv := range c.Intervals {
		var slowest, sum float64
		var leases []string
		for _, w := range iv.W {
			f := w.Metrics["worker.redis.flush_ms"]
			slowest = max(slowest, f)
			sum += f
			s.WorkerCPU += float64(w.CPU.Milliseconds()) / float64(len(iv.W)) / n
			s.ClientCmds += w.Metrics["worker.redis.commands"] / n
			s.Flushed += w.Metrics["worker.redis.buckets_flushed"]
			s.Lines += w.Metrics["worker.input.lines"] / n
			s.RSSMax = max(s.RSSMax, w.RSS)
			for name, v := range w.Metrics {
				switch {
				case v == 0:
				case isDrop(name):
					s.Drops[name] += v
				case isError(name):
					s.Errors[name] += v
				}
			}
			leases = append(leases, strconv.Itoa(int(w.Metrics["worker.redis.leases"])))
		}
		s.FlushMax += slowest / n
		s.FlushMean += sum / float64(len(iv.W)) / n
		s.Calls += float64(iv.Redis.Calls) / n
		s.Scripts += float64(iv.Redis.Scripts) / n
		s.RedisCPU += float64(iv.Redis.CPU.Microseconds()) / 1e3 / n
		s.NetIn += float64(iv.Redis.NetIn) / n
		s.NetOut += float64(iv.Redis.NetOut) / n
		s.Mem += float64(iv.Redis.UsedMemory-c.Baseline) / n
		s.Frames += float64(iv.Bodies) * frameKeyBytes / n
		s.Conns = max(s.Conns, iv.Redis.Clients-1)
		if i == len(c.Intervals)-1 {
			s.Leases = strings.Join(leases, "/")
		}
	}
	s.Want = n * float64(partitions)
	s.PerSeries = (s.Mem - s.Frames) / float64(c.Series)
	return s
}

// print writes the report as Markdown: the settings, then one table per
// phase, then anything that went wrong.
func (r *report) print(w io.Writer, command string) {
	o := r.Opt
	fmt.Fprintf(w, "Capacity run of %s UTC, took %s: `%s`\n\n", r.Started.Format("2006-01-02 15:04"), r.Took.Round(time.Second), command)
	fmt.Fprintf(w, "- machine: %d CPUs (GOMAXPROCS), load average %s before, %s after; redis-server %s, the workers and the load generator share them\n",
		runtime.NumCPU(), r.LoadBefore, r.LoadAfter, r.RedisVersion)
	fmt.Fprintf(w, "- METRICS_RESOLUTION=%s METRICS_GRACE=%s REDIS_HANDOVER=%s REDIS_PARTITIONS=%d REDIS_BALANCE=%v, outlet %s\n",
		o.Resolution, o.Grace, o.Handover, o.Partitions, o.Balance, o.Outlet)
	fmt.Fprintf(w, "- paced phase: %.0f lines/s over %d connections, %d lines per body, %d measurements per line; %d measured buckets each\n",
		o.Rate, o.Conns, o.BodyLines, perLine, o.Buckets)
	fmt.Fprintf(w, "- ingest phase: %s as fast as the workers answer; a Frame-Id key takes %.0f bytes of Redis memory (measured)\n\n", o.MaxFor, r.FrameKeyBytes)

	var rows [3][]string
	var notes []string
	h := float64(o.Resolution / o.Handover) // hand-overs per bucket
	for _, c := range r.Configs {
		s := c.summarize(o.Partitions, r.FrameKeyBytes)
		cs := fmt.Sprintf("| %d | %s | ", c.Workers, thousands(float64(c.Series)))
		rows[0] = append(rows[0], cs+fmt.Sprintf("%.0f / %.0f ms | %.0f ms | %.0f of %.0f | %s / %s (%s) | %.0f ms | %s / %s | %s / %s | %.0f | %d | %s | %s |",
			s.FlushMax, s.FlushMean, s.WorkerCPU, s.Flushed, s.Want,
			thousands(s.ClientCmds), thousands(s.Calls), thousands(s.Scripts), s.RedisCPU,
			size(s.NetIn), size(s.NetOut), size(s.Mem), size(s.Frames), s.PerSeries, s.Conns, size(float64(s.RSSMax)), s.Leases))
		var cpu time.Duration
		for _, d := range c.MaxCPU {
			cpu += d
		}
		rows[1] = append(rows[1], cs+fmt.Sprintf("%s | %s | %d | %d | %.2f | %s |",
			thousands(c.Paced.LinesPerSec()), thousands(c.Max.LinesPerSec()),
			c.Max.Refused, c.Max.Failed, cpu.Seconds()/c.Max.Elapsed.Seconds(), thousands(c.Max.LinesPerCPUSecond(cpu))))
		l, p := c.partials(o.Resolution)
		rows[2] = append(rows[2], cs+fmt.Sprintf("%.1f | %s | %.0f B | %.0f B | %.2f µs | %.2f µs | %s |",
			l, thousands(p), (s.Mem-s.Frames)/p, s.NetIn/p/h, s.RedisCPU*1e3/p/h,
			s.FlushMean*float64(c.Workers)*1e3/p, thousands(s.ClientCmds/float64(c.Workers))))

		tag := fmt.Sprintf("%d worker(s), %s series: ", c.Workers, thousands(float64(c.Series)))
		if len(s.Drops) > 0 {
			notes = append(notes, tag+"dropped or late in the measured buckets: "+listed(s.Drops))
		}
		if len(s.Errors) > 0 {
			notes = append(notes, tag+"failed (and retried) in the measured buckets: "+listed(s.Errors))
		}
		if c.Paced.Failed > 0 || c.Paced.Refused > 0 {
			notes = append(notes, fmt.Sprintf("%spaced phase: %d POSTs refused, %d failed", tag, c.Paced.Refused, c.Paced.Failed))
		}
		if len(c.Lost) > 0 {
			notes = append(notes, tag+"no emission for "+strings.Join(c.Lost, ", "))
		}
		for _, n := range c.Notes {
			notes = append(notes, tag+n)
		}
	}
	for i, t := range [3][3]string{
		{"Per bucket, at the paced load (means over the measured buckets):",
			"| workers | series | flush, slowest worker / mean | worker CPU, each (mean) | (partition, bucket)s flushed | commands: sent by the workers / run by Redis (script runs) | Redis CPU | bytes into / out of Redis | Redis memory: all / Frame-Id keys | bytes per series | Redis connections | worker RSS, max | leases at the end |",
			"| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"},
		{"Ingest (the paced rate achieved, then as fast as the workers answer):",
			"| workers | series | paced lines/s | lines/s accepted | POSTs refused (503) | POSTs failed | worker CPU-seconds per second, all | lines per worker CPU-second |",
			"| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"},
		{fmt.Sprintf("Per series-partial (one series as one worker holds it; %d hand-overs per bucket). A series with L lines per bucket, spread at random over N workers, is held by N·(1−(1−1/N)^L) of them:", int(h)),
			"| workers | series | lines per series per bucket | series-partials | Redis memory | bytes into Redis per hand-over | Redis CPU per hand-over | flush time, all workers | Redis commands per bucket per worker |",
			"| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"},
	} {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s\n\n%s\n%s\n", t[0], t[1], t[2])
		for _, row := range rows[i] {
			fmt.Fprintln(w, row)
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, "- "+n)
		}
	}
}

// listed formats name=value pairs in name order.
func listed(m map[string]float64) string {
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%.0f", n, m[n]))
	}
	return strings.Join(parts, " ")
}

// partials returns the lines each series had per bucket at the paced rate
// achieved, and the series-partials the workers held: a series whose L
// lines went to N workers at random is held by N·(1−(1−1/N)^L) of them
// on average.
func (c config) partials(res time.Duration) (linesPerSeries, partials float64) {
	linesPerSeries = c.Paced.LinesPerSec() * res.Seconds() * perLine / float64(c.Series)
	n := float64(c.Workers)
	return linesPerSeries, float64(c.Series) * n * (1 - math.Pow(1-1/n, linesPerSeries))
}

// thousands formats a count with comma separators.
func thousands(x float64) string {
	s := strconv.FormatInt(int64(x+0.5), 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// size formats bytes as kB or MB (10^3, 10^6).
func size(b float64) string {
	switch {
	case b >= 10e6:
		return fmt.Sprintf("%.0f MB", b/1e6)
	case b >= 1e6:
		return fmt.Sprintf("%.1f MB", b/1e6)
	case b >= 1e3:
		return fmt.Sprintf("%.0f kB", b/1e3)
	}
	return fmt.Sprintf("%.0f B", b)
}
