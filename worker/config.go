package main

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/dynometrics/dynometrics/emitter"
	"github.com/kelseyhightower/envconfig"
)

// Config is every environment variable the worker reads, in one place. The
// struct tags are the documentation `worker -h` prints.
type Config struct {
	Port                string `envconfig:"PORT" desc:"HTTP drain listen port (POST /logs, GET /health); unset: no HTTP input"`
	DrainUser           string `envconfig:"DRAIN_USER" desc:"Basic auth user the drain URL carries (required with PORT)"`
	DrainPassword       string `envconfig:"DRAIN_PASSWORD" desc:"Basic auth password the drain URL carries (required with PORT)"`
	DrainInsecureNoAuth bool   `envconfig:"DRAIN_INSECURE_NO_AUTH" default:"false" desc:"accept drain POSTs without credentials (logs a warning)"`

	HerokuAPIKey  string `envconfig:"HEROKU_API_KEY" desc:"Platform API key: tail the app's own logs through log sessions"`
	HerokuAppName string `envconfig:"HEROKU_APP_NAME" desc:"app whose logs are tailed (with HEROKU_API_KEY)"`
	HerokuAPIURL  string `envconfig:"HEROKU_API_URL" default:"https://api.heroku.com" desc:"Platform API base URL"`

	SyslogAddr    string `envconfig:"SYSLOG_ADDR" desc:"syslog TCP listen address, e.g. :6514; unset: no syslog input"`
	SyslogTLSCert string `envconfig:"SYSLOG_TLS_CERT" desc:"PEM certificate file: serve syslog over TLS (with SYSLOG_TLS_KEY)"`
	SyslogTLSKey  string `envconfig:"SYSLOG_TLS_KEY" desc:"PEM private key file for SYSLOG_TLS_CERT"`

	MetricsPrefix     string        `envconfig:"METRICS_PREFIX" desc:"metric name prefix, e.g. us-east.prod.app"`
	MetricsTags       string        `envconfig:"METRICS_TAGS" desc:"k:v,k:v tags (Librato measurements API) and labels (remote write)"`
	MetricsResolution time.Duration `envconfig:"METRICS_RESOLUTION" default:"60s" desc:"bucket width"`
	MetricsGrace      time.Duration `envconfig:"METRICS_GRACE" default:"10s" desc:"wait after a bucket's end for late lines before flushing it"`

	LibratoUser  string `envconfig:"LIBRATO_USER" desc:"Librato account email (empty with LIBRATO_API=measurements: AppOptics token auth)"`
	LibratoToken string `envconfig:"LIBRATO_TOKEN" desc:"Librato/AppOptics API token; set: enables the Librato outlet"`
	LibratoURL   string `envconfig:"LIBRATO_URL" default:"https://metrics-api.librato.com" desc:"Librato API base URL"`
	LibratoAPI   string `envconfig:"LIBRATO_API" default:"metrics" desc:"metrics (legacy source API) or measurements (tagged API)"`

	RemoteWriteURL         string `envconfig:"REMOTE_WRITE_URL" desc:"Prometheus remote-write endpoint; set: enables that outlet"`
	RemoteWriteUser        string `envconfig:"REMOTE_WRITE_USER" desc:"remote-write Basic auth user"`
	RemoteWritePassword    string `envconfig:"REMOTE_WRITE_PASSWORD" desc:"remote-write Basic auth password"`
	RemoteWriteBearerToken string `envconfig:"REMOTE_WRITE_BEARER_TOKEN" desc:"remote-write bearer token (instead of Basic auth)"`
	RemoteWriteHeaders     string `envconfig:"REMOTE_WRITE_HEADERS" desc:"extra headers Name:value,Name:value (e.g. X-Scope-OrgID:tenant1)"`

	RedisURL           string        `envconfig:"REDIS_URL" desc:"redis:// or rediss:// URL (Heroku Key-Value Store sets it): share state across workers and restarts; unset: this worker alone"`
	RedisTLSSkipVerify bool          `envconfig:"REDIS_TLS_SKIP_VERIFY" default:"false" desc:"accept any certificate on rediss:// (Heroku Key-Value Store's is self-signed)"`
	RedisHandover      time.Duration `envconfig:"REDIS_HANDOVER" default:"2s" desc:"how often partial buckets go to Redis: what a crash (kill -9) can lose; shorter than METRICS_GRACE"`
	RedisFallbackAfter time.Duration `envconfig:"REDIS_FALLBACK_AFTER" default:"2m" desc:"Redis unreachable this long: send due buckets from this worker alone"`
	RedisPartitions    int           `envconfig:"REDIS_PARTITIONS" default:"16" desc:"series partitions in Redis (same on every worker of the app)"`

	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"25s" desc:"on SIGTERM: time to flush every bucket and send what is queued"`
}

// loadConfig reads the environment and checks the combinations envconfig
// cannot. Error messages name the variable and never carry a secret's value.
func loadConfig() (Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	if c.Port != "" && !c.DrainInsecureNoAuth && (c.DrainUser == "" || c.DrainPassword == "") {
		errs = append(errs, errors.New("config: PORT is set but DRAIN_USER and DRAIN_PASSWORD are not: the drain needs credentials (or set DRAIN_INSECURE_NO_AUTH=true to accept unauthenticated POSTs)"))
	}
	if (c.HerokuAPIKey == "") != (c.HerokuAppName == "") {
		errs = append(errs, errors.New("config: HEROKU_API_KEY and HEROKU_APP_NAME go together: set both to tail the app's logs, or neither"))
	}
	if (c.SyslogTLSCert == "") != (c.SyslogTLSKey == "") {
		errs = append(errs, errors.New("config: SYSLOG_TLS_CERT and SYSLOG_TLS_KEY go together"))
	}
	if c.SyslogTLSCert != "" && c.SyslogAddr == "" {
		errs = append(errs, errors.New("config: SYSLOG_TLS_CERT is set but SYSLOG_ADDR is not"))
	}
	if c.MetricsResolution < time.Second || c.MetricsResolution%time.Second != 0 {
		errs = append(errs, fmt.Errorf("config: METRICS_RESOLUTION=%s: want whole seconds, at least 1s", c.MetricsResolution))
	}
	if c.MetricsGrace < 0 {
		errs = append(errs, fmt.Errorf("config: METRICS_GRACE=%s: must not be negative", c.MetricsGrace))
	}
	if c.LibratoAPI != "metrics" && c.LibratoAPI != "measurements" {
		errs = append(errs, fmt.Errorf("config: LIBRATO_API=%q: want metrics or measurements", c.LibratoAPI))
	}
	if c.LibratoUser != "" && c.LibratoToken == "" {
		errs = append(errs, errors.New("config: LIBRATO_USER is set but LIBRATO_TOKEN is not"))
	}
	if c.LibratoToken != "" && c.LibratoUser == "" && c.LibratoAPI == "metrics" {
		errs = append(errs, errors.New("config: LIBRATO_TOKEN without LIBRATO_USER works only with LIBRATO_API=measurements (AppOptics token auth)"))
	}
	if c.RemoteWriteBearerToken != "" && (c.RemoteWriteUser != "" || c.RemoteWritePassword != "") {
		errs = append(errs, errors.New("config: REMOTE_WRITE_BEARER_TOKEN and REMOTE_WRITE_USER/REMOTE_WRITE_PASSWORD exclude each other"))
	}
	errs = append(errs, c.validateRedis()...)
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("config: SHUTDOWN_TIMEOUT=%s: must be positive", c.ShutdownTimeout))
	}
	return errors.Join(errs...)
}

// librato reports whether the Librato outlet is configured.
func (c Config) librato() bool { return c.LibratoToken != "" }

// remoteWrite reports whether the remote-write outlet is configured.
func (c Config) remoteWrite() bool { return c.RemoteWriteURL != "" }

// printUsage writes the flags and envconfig's table of variables to w.
func printUsage(w io.Writer, flags func(io.Writer)) {
	fmt.Fprintf(w, "Usage: worker [-stdin]\n\nThe dynometrics worker turns a Heroku-style log stream into per-dyno metrics.\n\nFlags:\n")
	flags(w)
	fmt.Fprintf(w, "\nEnvironment (no outlet configured: buckets are printed to stdout):\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_ = envconfig.Usagef("", &Config{}, tw, usageFormat)
	tw.Flush()
	fmt.Fprintf(w, "\nThe worker's own health metrics are printed to stdout by the emitter library:\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_ = emitter.PrintEnvUsage(tw)
	tw.Flush()
}

const usageFormat = "{{range .}}{{usage_key .}}\t{{usage_default .}}\t{{usage_description .}}\n{{end}}"
