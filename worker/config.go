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
	Port                string `envconfig:"PORT" desc:"HTTP listen port: drain (POST /logs, GET /health) and OTLP receiver (POST /v1/logs, /v1/metrics); unset: no HTTP input"`
	DrainUser           string `envconfig:"DRAIN_USER" desc:"Basic auth user the drain URL carries (required with PORT)"`
	DrainPassword       string `envconfig:"DRAIN_PASSWORD" desc:"Basic auth password the drain URL carries (required with PORT)"`
	DrainInsecureNoAuth bool   `envconfig:"DRAIN_INSECURE_NO_AUTH" default:"false" desc:"accept drain POSTs without credentials (logs a warning)"`

	OTLPSourceAttributes string `envconfig:"OTLP_SOURCE_ATTRIBUTES" default:"heroku.dyno.name" desc:"OTLP (Fir telemetry drain, POST /v1/logs and /v1/metrics on PORT): attributes whose value is the source, first found on the record, then the resource"`
	FirDynoNames         string `envconfig:"FIR_DYNO_NAMES" default:"full" desc:"full: keep Fir dyno names (web-5d8f7c9b4-x2k9p) as sources; type: reduce them to the process type (web)"`

	HerokuAPIKey  string `envconfig:"HEROKU_API_KEY" desc:"Platform API key: tail the app's own logs through log sessions"`
	HerokuAppName string `envconfig:"HEROKU_APP_NAME" desc:"app whose logs are tailed (with HEROKU_API_KEY)"`
	HerokuAPIURL  string `envconfig:"HEROKU_API_URL" default:"https://api.heroku.com" desc:"Platform API base URL"`

	SyslogAddr    string `envconfig:"SYSLOG_ADDR" desc:"syslog TCP listen address, e.g. :6514; unset: no syslog input"`
	SyslogTLSCert string `envconfig:"SYSLOG_TLS_CERT" desc:"PEM certificate file: serve syslog over TLS (with SYSLOG_TLS_KEY)"`
	SyslogTLSKey  string `envconfig:"SYSLOG_TLS_KEY" desc:"PEM private key file for SYSLOG_TLS_CERT"`

	MetricsPrefix     string        `envconfig:"METRICS_PREFIX" desc:"metric name prefix, e.g. us-east.prod.app"`
	MetricsTags       string        `envconfig:"METRICS_TAGS" desc:"k:v,k:v tags (Librato measurements API) and labels (remote write)"`
	MetricsResolution time.Duration `envconfig:"METRICS_RESOLUTION" default:"60s" desc:"bucket width"`
	MetricsGrace      time.Duration `envconfig:"METRICS_GRACE" default:"10s" desc:"wait after a bucket's end for late lines before flushing it (2s with -stdin)"`

	LibratoUser  string `envconfig:"LIBRATO_USER" desc:"Librato account email (empty with LIBRATO_API=measurements: AppOptics token auth)"`
	LibratoToken string `envconfig:"LIBRATO_TOKEN" desc:"Librato/AppOptics API token; set: enables the Librato outlet"`
	LibratoURL   string `envconfig:"LIBRATO_URL" default:"https://metrics-api.librato.com" desc:"Librato API base URL"`
	LibratoAPI   string `envconfig:"LIBRATO_API" default:"metrics" desc:"metrics (legacy source API) or measurements (tagged API)"`

	RemoteWriteURL         string `envconfig:"REMOTE_WRITE_URL" desc:"Prometheus remote-write endpoint; set: enables that outlet"`
	RemoteWriteUser        string `envconfig:"REMOTE_WRITE_USER" desc:"remote-write Basic auth user"`
	RemoteWritePassword    string `envconfig:"REMOTE_WRITE_PASSWORD" desc:"remote-write Basic auth password"`
	RemoteWriteBearerToken string `envconfig:"REMOTE_WRITE_BEARER_TOKEN" desc:"remote-write bearer token (instead of Basic auth)"`
	RemoteWriteHeaders     string `envconfig:"REMOTE_WRITE_HEADERS" desc:"extra headers Name:value,Name:value (e.g. X-Scope-OrgID:tenant1)"`

	OTLPEndpoint           string `envconfig:"OTEL_EXPORTER_OTLP_ENDPOINT" desc:"OTLP/HTTP base URL, /v1/metrics appended; set (or the next): enables the OTLP outlet"`
	OTLPMetricsEndpoint    string `envconfig:"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT" desc:"OTLP/HTTP metrics URL, used as is"`
	OTLPHeaders            string `envconfig:"OTEL_EXPORTER_OTLP_HEADERS" desc:"k=v,k=v request headers, values URL-encoded (authorization=Bearer%20TOKEN)"`
	OTLPMetricsHeaders     string `envconfig:"OTEL_EXPORTER_OTLP_METRICS_HEADERS" desc:"as OTEL_EXPORTER_OTLP_HEADERS, wins over it"`
	OTLPProtocol           string `envconfig:"OTEL_EXPORTER_OTLP_PROTOCOL" desc:"http/protobuf (default) or http/json"`
	OTLPMetricsProtocol    string `envconfig:"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL" desc:"as OTEL_EXPORTER_OTLP_PROTOCOL, wins over it"`
	OTLPCompression        string `envconfig:"OTEL_EXPORTER_OTLP_COMPRESSION" desc:"gzip (default) or none"`
	OTLPMetricsCompression string `envconfig:"OTEL_EXPORTER_OTLP_METRICS_COMPRESSION" desc:"as OTEL_EXPORTER_OTLP_COMPRESSION, wins over it"`
	OTLPTimeout            string `envconfig:"OTEL_EXPORTER_OTLP_TIMEOUT" desc:"per-request timeout in milliseconds (default 10000)"`
	OTLPMetricsTimeout     string `envconfig:"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT" desc:"as OTEL_EXPORTER_OTLP_TIMEOUT, wins over it"`
	OTLPTemporality        string `envconfig:"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE" desc:"cumulative (default), delta, or lowmemory (= delta here)"`
	OTELResourceAttributes string `envconfig:"OTEL_RESOURCE_ATTRIBUTES" desc:"k=v,k=v resource attributes of the OTLP outlet"`
	OTELServiceName        string `envconfig:"OTEL_SERVICE_NAME" desc:"service.name of the OTLP outlet's resource (default unknown_service)"`

	ViewUser      string        `envconfig:"VIEW_USER" desc:"Basic auth user of the live view (with VIEW_PASSWORD)"`
	ViewPassword  string        `envconfig:"VIEW_PASSWORD" desc:"set: the live view is served at / on PORT, and on -view's address, behind Basic auth; must differ from DRAIN_PASSWORD"`
	ViewWindow    time.Duration `envconfig:"VIEW_WINDOW" default:"6h" desc:"how far back the live view's history reaches"`
	ViewMaxPoints int           `envconfig:"VIEW_MAX_POINTS" default:"720" desc:"points kept per line of the live view, whatever VIEW_WINDOW"`
	ViewMaxSeries int           `envconfig:"VIEW_MAX_SERIES" default:"2000" desc:"per-dyno series the live view keeps; more are dropped and counted"`

	RedisURL           string        `envconfig:"REDIS_URL" desc:"redis:// or rediss:// URL (Heroku Key-Value Store sets it): share state across workers and restarts; unset: this worker alone"`
	RedisTLSSkipVerify bool          `envconfig:"REDIS_TLS_SKIP_VERIFY" default:"false" desc:"accept any certificate on rediss:// (Heroku Key-Value Store's is self-signed)"`
	RedisHandover      time.Duration `envconfig:"REDIS_HANDOVER" default:"2s" desc:"how often partial buckets go to Redis: what a crash (kill -9) can lose; shorter than METRICS_GRACE"`
	RedisFallbackAfter time.Duration `envconfig:"REDIS_FALLBACK_AFTER" default:"2m" desc:"Redis unreachable this long: send due buckets from this worker alone"`
	RedisPartitions    int           `envconfig:"REDIS_PARTITIONS" default:"16" desc:"series partitions in Redis (same on every worker of the app)"`
	RedisLeaseTTL      time.Duration `envconfig:"REDIS_LEASE_TTL" default:"15s" desc:"how long a partition's flush lease lasts unless renewed: how long a dead worker's partitions wait"`

	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"25s" desc:"on SIGTERM: time to flush every bucket and send what is queued"`
}

// loadConfig reads the environment and checks every variable (configcheck.go)
// and the emitter's EMITTER_* variables, before anything starts. Every error
// wraps errConfig, names the variable and what it accepts, and never carries
// a secret's value.
func loadConfig() (Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return c, envError(err)
	}
	err := c.validate()
	if _, eerr := emitter.FromEnv(); eerr != nil {
		err = errors.Join(err, fmt.Errorf("%w: %w", errConfig, eerr))
	}
	return c, err
}

// librato reports whether the Librato outlet is configured.
func (c Config) librato() bool { return c.LibratoToken != "" }

// remoteWrite reports whether the remote-write outlet is configured.
func (c Config) remoteWrite() bool { return c.RemoteWriteURL != "" }

// printUsage writes the flags and every variable the worker reads, with its
// default and meaning, to w.
func printUsage(w io.Writer, flags func(io.Writer)) {
	fmt.Fprintf(w, "Usage: worker [-stdin] [-view ADDR] [-version]\n\nThe dynometrics worker turns a Heroku-style log stream into per-dyno metrics.\n\nFlags:\n")
	flags(w)
	fmt.Fprintf(w, "\nEnvironment (variable, default, meaning; no outlet configured: buckets are printed to stdout):\n\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_ = envconfig.Usagef("", &Config{}, tw, usageFormat)
	tw.Flush()
	fmt.Fprintf(w, "\nThe worker's own health metrics, printed by the emitter library:\n\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_ = emitter.PrintEnvUsage(tw)
	tw.Flush()
}

const usageFormat = "{{range .}}{{usage_key .}}\t{{usage_default .}}\t{{usage_description .}}\n{{end}}"
