package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// info is one reply of Redis' INFO command: its fields, and the per-command
// statistics of the commandstats section.
type info struct {
	fields map[string]string
	cmds   map[string]cmdStat // by command name, lower case (cmdstat_evalsha → "evalsha")
}

// cmdStat is one cmdstat_<name> line. Commands a script runs are counted
// too, under their own names.
type cmdStat struct {
	Calls int64
	Usec  int64 // time Redis spent in it, in microseconds
}

// parseInfo reads an INFO reply: "# Section" headers, "field:value" lines,
// CRLF or LF line ends. A line without a colon, or a cmdstat line whose
// calls or usec is not a number, is an error naming the line.
func parseInfo(s string) (info, error) {
	in := info{fields: make(map[string]string), cmds: make(map[string]cmdStat)}
	for n, line := range strings.Split(s, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" {
			return in, fmt.Errorf("INFO line %d: no field:value in %q", n+1, line)
		}
		in.fields[k] = v
		name, ok := strings.CutPrefix(k, "cmdstat_")
		if !ok {
			continue
		}
		var st cmdStat
		var seen int
		for _, kv := range strings.Split(v, ",") {
			f, val, _ := strings.Cut(kv, "=")
			dst, ok := map[string]*int64{"calls": &st.Calls, "usec": &st.Usec}[f]
			if !ok {
				continue
			}
			x, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return in, fmt.Errorf("INFO line %d: %s of %s: %w", n+1, f, name, err)
			}
			*dst = x
			seen++
		}
		if seen != 2 {
			return in, fmt.Errorf("INFO line %d: %s without calls and usec: %q", n+1, name, v)
		}
		in.cmds[strings.ToLower(name)] = st
	}
	if len(in.fields) == 0 {
		return in, errors.New("INFO: empty reply")
	}
	return in, nil
}

// redisSample is what the harness reads from Redis at one moment.
type redisSample struct {
	At         time.Time
	Calls      int64         // commands run, those run by scripts included
	Scripts    int64         // EVALSHA and EVAL calls (each one script run)
	Usec       int64         // time in commands (scripts count their commands twice: in EVALSHA and in their own lines)
	CPU        time.Duration // used_cpu_user + used_cpu_sys of the redis-server process
	NetIn      int64         // total_net_input_bytes
	NetOut     int64         // total_net_output_bytes
	UsedMemory int64         // used_memory (bytes allocated)
	Keys       int64         // keys in database 0
	Clients    int64         // connected_clients (the harness's own included)
}

// sampleOf extracts a redisSample from an INFO reply that holds the
// commandstats, stats, memory, cpu, keyspace and clients sections.
func sampleOf(in info, at time.Time) (redisSample, error) {
	s := redisSample{At: at}
	for name, c := range in.cmds {
		s.Calls += c.Calls
		s.Usec += c.Usec
		if name == "evalsha" || name == "eval" {
			s.Scripts += c.Calls
		}
	}
	var errs []error
	num := func(name string) float64 { // an integer, or seconds with a fraction (used_cpu_sys …)
		v, ok := in.fields[name]
		x, err := strconv.ParseFloat(v, 64)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("INFO has no %s", name))
		case err != nil || x < 0:
			errs = append(errs, fmt.Errorf("INFO %s: bad value %q", name, v))
		}
		return x
	}
	s.NetIn, s.NetOut = int64(num("total_net_input_bytes")), int64(num("total_net_output_bytes"))
	s.UsedMemory, s.Clients = int64(num("used_memory")), int64(num("connected_clients"))
	s.CPU = time.Duration(num("used_cpu_user")*float64(time.Second)) + time.Duration(num("used_cpu_sys")*float64(time.Second))
	if v, ok := in.fields["db0"]; ok { // "keys=2,expires=0,…"; no line while database 0 is empty
		n, _, _ := strings.Cut(strings.TrimPrefix(v, "keys="), ",")
		var err error
		if s.Keys, err = strconv.ParseInt(n, 10, 64); err != nil || !strings.HasPrefix(v, "keys=") {
			errs = append(errs, fmt.Errorf("INFO db0 keys: %q", v))
		}
	}
	return s, errors.Join(errs...)
}

// sub returns the change from a to b of the cumulative fields; UsedMemory,
// Keys and Clients are b's (they are levels, not counters).
func (b redisSample) sub(a redisSample) redisSample {
	return redisSample{
		At: b.At, Calls: b.Calls - a.Calls, Scripts: b.Scripts - a.Scripts, Usec: b.Usec - a.Usec,
		CPU: b.CPU - a.CPU, NetIn: b.NetIn - a.NetIn, NetOut: b.NetOut - a.NetOut,
		UsedMemory: b.UsedMemory, Keys: b.Keys, Clients: b.Clients,
	}
}
