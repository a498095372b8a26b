package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestStdinToConsole is the README's local run: app lines on stdin (bare,
// `heroku logs` and syslog forms), no outlet configured, buckets on stdout
// when stdin ends.
func TestStdinToConsole(t *testing.T) {
	t.Setenv("METRICS_PREFIX", "demo")
	t.Setenv("EMITTER_INTERVAL", "1h") // keep self-metrics out of the way but for the final emission
	start := time.Now().UTC().Truncate(time.Minute).Add(-time.Minute)
	ts := func(s int) string { return syslogTime(start.Add(time.Duration(s) * time.Second)) }
	in := strings.Join([]string{
		"at=metrics count#http.requests=3 sample#queue=2",
		ts(1) + " app[web.1]: count#http.requests=4 measure#db=5ms",
		ts(2) + " app[web.1]: count#http.requests=1 measure#db=15ms",
		"<190>1 " + ts(3) + " host app web.2 - sample#queue=7 count#http.requests=bad",
		"",
	}, "\n")
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"-stdin"}, strings.NewReader(in), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	// The bare line has no timestamp: it lands in the current bucket.
	b := "bucket=" + start.Format(time.RFC3339)
	for _, want := range []string{
		b + " period=60s source=web.1 count#demo.http.requests=5\n",
		b + " period=60s source=web.1 measure#demo.db count=2 sum=20 min=5 max=15 mean=10 median=5 perc95=15 perc99=15 unit=ms\n",
		b + " period=60s source=web.2 sample#demo.queue=7\n",
		" period=60s count#demo.http.requests=3\n",
		" period=60s sample#demo.queue=2\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	// The worker's own health, emitted once more at exit.
	fields := strings.Fields(out)
	for _, want := range []string{"count#worker.input.lines=4", "count#worker.input.rejected_pairs=1", "count#worker.aggregate.added=7"} {
		if !slices.Contains(fields, want) {
			t.Errorf("self-metrics lack %s:\n%s", want, out)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	valid := func() Config {
		return Config{MetricsResolution: time.Minute, MetricsGrace: 10 * time.Second, LibratoAPI: "metrics", ShutdownTimeout: 25 * time.Second}
	}
	tests := map[string]struct {
		change func(*Config)
		want   string // "" means valid
	}{
		"defaults":               {func(c *Config) {}, ""},
		"drain with auth":        {func(c *Config) { c.Port, c.DrainUser, c.DrainPassword = "8080", "u", "p" }, ""},
		"drain without auth":     {func(c *Config) { c.Port = "8080" }, "PORT is set but DRAIN_USER and DRAIN_PASSWORD are not"},
		"drain, auth off":        {func(c *Config) { c.Port, c.DrainInsecureNoAuth = "8080", true }, ""},
		"api key without app":    {func(c *Config) { c.HerokuAPIKey = "k" }, "HEROKU_API_KEY and HEROKU_APP_NAME go together"},
		"tls cert only":          {func(c *Config) { c.SyslogAddr, c.SyslogTLSCert = ":6514", "c.pem" }, "SYSLOG_TLS_CERT and SYSLOG_TLS_KEY go together"},
		"tls without addr":       {func(c *Config) { c.SyslogTLSCert, c.SyslogTLSKey = "c.pem", "k.pem" }, "SYSLOG_TLS_CERT is set but SYSLOG_ADDR is not"},
		"fractional res":         {func(c *Config) { c.MetricsResolution = 1500 * time.Millisecond }, "METRICS_RESOLUTION=1.5s"},
		"negative grace":         {func(c *Config) { c.MetricsGrace = -time.Second }, "METRICS_GRACE=-1s"},
		"bad api":                {func(c *Config) { c.LibratoAPI = "v2" }, `LIBRATO_API="v2"`},
		"user without token":     {func(c *Config) { c.LibratoUser = "me@example.com" }, "LIBRATO_USER is set but LIBRATO_TOKEN is not"},
		"token only, source API": {func(c *Config) { c.LibratoToken = "secret-token" }, "LIBRATO_TOKEN without LIBRATO_USER"},
		"token only, appoptics":  {func(c *Config) { c.LibratoToken, c.LibratoAPI = "secret-token", "measurements" }, ""},
		"bearer and basic":       {func(c *Config) { c.RemoteWriteBearerToken, c.RemoteWriteUser = "secret-token", "u" }, "exclude each other"},
		"no shutdown time":       {func(c *Config) { c.ShutdownTimeout = 0 }, "SHUTDOWN_TIMEOUT=0s"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := valid()
			tc.change(&c)
			err := c.validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret-token") {
				t.Fatalf("error leaks a secret: %v", err)
			}
		})
	}
}

func TestEnvErrors(t *testing.T) {
	tests := map[string]struct {
		env  map[string]string
		args []string
		want string
	}{
		"bad duration":  {map[string]string{"METRICS_RESOLUTION": "soon"}, []string{"-stdin"}, "METRICS_RESOLUTION"},
		"no input":      {nil, nil, "no input configured"},
		"bad tags":      {map[string]string{"METRICS_TAGS": "region"}, []string{"-stdin"}, "METRICS_TAGS"},
		"bad emitter":   {map[string]string{"EMITTER_INTERVAL": "often"}, []string{"-stdin"}, "EMITTER_INTERVAL"},
		"stray arg":     {nil, []string{"stdin"}, `unexpected argument "stdin"`},
		"bad rw header": {map[string]string{"REMOTE_WRITE_URL": "http://127.0.0.1:1/api/v1/write", "REMOTE_WRITE_HEADERS": "nocolon"}, []string{"-stdin"}, "REMOTE_WRITE_HEADERS"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			if code := realMain(tc.args, strings.NewReader(""), &stdout, &stderr); code == 0 {
				t.Fatalf("exit 0, want an error containing %q", tc.want)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr %q lacks %q", stderr.String(), tc.want)
			}
		})
	}
}

func TestUsageListsEveryVariable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"-h"}, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("worker -h: exit %d", code)
	}
	for _, v := range []string{"-stdin", "PORT", "DRAIN_PASSWORD", "HEROKU_API_KEY", "SYSLOG_TLS_KEY", "METRICS_RESOLUTION", "60s",
		"LIBRATO_API", "https://metrics-api.librato.com", "REMOTE_WRITE_HEADERS", "SHUTDOWN_TIMEOUT", "EMITTER_INTERVAL"} {
		if !strings.Contains(stderr.String(), v) {
			t.Errorf("worker -h does not mention %s:\n%s", v, stderr.String())
		}
	}
}
