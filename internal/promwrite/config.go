package promwrite

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dynometrics/dynometrics/internal/envcfg"
	"github.com/dynometrics/dynometrics/internal/outlet"
)

// Defaults and bounds for the zero values of Config.
const (
	// DefaultMaxSeriesPerRequest is how many time series one request carries at
	// most. A measure# series becomes 7 time series. Prometheus' own remote
	// write sends 2,000 samples per request by default (max_samples_per_send).
	DefaultMaxSeriesPerRequest = 2000

	// DefaultMaxTrackedSeries bounds the running totals kept in memory, one
	// per (name, unit, source, kind) seen (about 200 bytes each, so about
	// 10 MB). At the bound the least recently updated series is forgotten
	// (Stats.Evicted): if it comes back, its counter restarts at that
	// bucket's value, which Prometheus reads as a counter reset.
	DefaultMaxTrackedSeries = 50_000

	// DefaultTimeout is the timeout of the default HTTP client.
	DefaultTimeout = 30 * time.Second

	// DefaultMaxAge is the default Queue.MaxAge: Prometheus' TSDB refuses
	// samples more than an hour older than its newest one (out of bounds),
	// so older batches are dropped instead of being sent to fail.
	DefaultMaxAge = time.Hour

	// DefaultConcurrency is the default Queue.Concurrency. It is 1 so that
	// batches are accepted in the order they were written: a bucket retried
	// after a newer one was accepted would be refused as out of order.
	DefaultConcurrency = 1

	// QueueName is the default Queue.Name, used in logs.
	QueueName = "promwrite"

	// UserAgent is the User-Agent header of every request (a Headers entry
	// may replace it).
	UserAgent = "dynometrics-promwrite/1.0"
)

// ErrConfig is wrapped by every error New returns.
var ErrConfig = errors.New("promwrite: invalid config")

// Config configures an Outlet. Zero values mean the documented defaults.
type Config struct {
	// URL is the remote-write endpoint, e.g.
	// http://127.0.0.1:9090/api/v1/write. Required; http or https.
	URL string
	// User and Password set Basic auth; both or neither.
	User, Password string
	// BearerToken sets "Authorization: Bearer …"; not together with User.
	BearerToken string
	// Headers are extra request headers, e.g. {"X-Scope-OrgID": "tenant1"}
	// (see ParseHeaders). They may not set the protocol headers, nor
	// Authorization when User or BearerToken is set.
	Headers map[string]string

	// Prefix is joined to every metric name with "_" before sanitizing:
	// "us-east.prod.app" and "router.service" give
	// "us_east_prod_app_router_service".
	Prefix string
	// Tags become labels on every series. Names are sanitized to
	// [a-zA-Z_][a-zA-Z0-9_]*; they may not be (after sanitizing) "source",
	// "quantile", "__name__" or start with "__"; values must be non-empty UTF-8.
	Tags map[string]string

	// MaxSeriesPerRequest bounds the time series in one request
	// (default DefaultMaxSeriesPerRequest).
	MaxSeriesPerRequest int
	// MaxTrackedSeries bounds the running totals kept in memory
	// (default DefaultMaxTrackedSeries).
	MaxTrackedSeries int

	// Queue tunes delivery. Zero fields take the outlet package's defaults,
	// except Name (QueueName), MaxAge (DefaultMaxAge) and Concurrency
	// (DefaultConcurrency).
	Queue outlet.QueueConfig
	// HTTPClient sends the requests (default: a client with DefaultTimeout).
	HTTPClient *http.Client
	// Logger receives the outlet's and its queue's messages (default slog.Default()).
	Logger *slog.Logger

	// Now is the clock that caps a sample's timestamp (a bucket cut short at
	// shutdown is stamped now, not at its end); default time.Now.
	Now func() time.Time
}

// Env is the remote-write outlet's environment. REMOTE_WRITE_URL enables it.
type Env struct {
	URL         string `envconfig:"REMOTE_WRITE_URL" accepts:"an http(s) URL such as http://127.0.0.1:9090/api/v1/write" desc:"Prometheus remote-write endpoint; set: enables that outlet"`
	User        string `envconfig:"REMOTE_WRITE_USER" accepts:"a Basic auth user name without ':' (with REMOTE_WRITE_PASSWORD)" desc:"remote-write Basic auth user"`
	Password    string `envconfig:"REMOTE_WRITE_PASSWORD" secret:"true" accepts:"a Basic auth password (with REMOTE_WRITE_USER)" desc:"remote-write Basic auth password"`
	BearerToken string `envconfig:"REMOTE_WRITE_BEARER_TOKEN" secret:"true" accepts:"a bearer token" desc:"remote-write bearer token (instead of Basic auth)"`
	Headers     string `envconfig:"REMOTE_WRITE_HEADERS" secret:"true" accepts:"Name:value pairs separated by commas, e.g. X-Scope-OrgID:tenant1" desc:"extra request headers"`
}

// Enabled reports whether REMOTE_WRITE_URL is set.
func (e Env) Enabled() bool { return e.URL != "" }

// Config returns the outlet's connection settings from e, the headers
// parsed, with tags; what check refuses, Validate reports.
func (e Env) Config(tags map[string]string) (Config, error) {
	h, err := ParseHeaders(e.Headers)
	if err != nil {
		return Config{}, envcfg.Bad("REMOTE_WRITE_HEADERS", "%s", strings.TrimPrefix(err.Error(), ErrHeaders.Error()+": "))
	}
	return Config{URL: e.URL, User: e.User, Password: e.Password, BearerToken: e.BearerToken, Headers: h, Tags: tags}, nil
}

// Validate checks the variables and, when the outlet is enabled, the tags
// (METRICS_TAGS, parsed neutrally) as labels.
func (e Env) Validate(tags map[string]string) error {
	if !e.Enabled() {
		if e.User != "" || e.Password != "" || e.BearerToken != "" || e.Headers != "" {
			return errors.New("REMOTE_WRITE_USER, REMOTE_WRITE_PASSWORD, REMOTE_WRITE_BEARER_TOKEN or REMOTE_WRITE_HEADERS is set " +
				"but REMOTE_WRITE_URL is not: the URL enables the remote-write outlet")
		}
		return nil
	}
	c, err := e.Config(tags)
	if err != nil {
		return err
	}
	_, err = c.rules()
	return err
}

// check validates c and returns it with defaults applied, and the sanitized
// tags. Its errors wrap ErrConfig.
func (c Config) check() (Config, map[string]string, error) {
	tags, err := c.rules()
	if err != nil {
		return c, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.MaxSeriesPerRequest < 0 {
		return c, nil, fmt.Errorf("%w: MaxSeriesPerRequest %d is negative", ErrConfig, c.MaxSeriesPerRequest)
	}
	if c.MaxTrackedSeries < 0 {
		return c, nil, fmt.Errorf("%w: MaxTrackedSeries %d is negative", ErrConfig, c.MaxTrackedSeries)
	}
	c.MaxSeriesPerRequest = cmp.Or(c.MaxSeriesPerRequest, DefaultMaxSeriesPerRequest)
	c.MaxTrackedSeries = cmp.Or(c.MaxTrackedSeries, DefaultMaxTrackedSeries)
	c.Queue.Name = cmp.Or(c.Queue.Name, QueueName)
	c.Queue.MaxAge = cmp.Or(c.Queue.MaxAge, DefaultMaxAge)
	c.Queue.Concurrency = cmp.Or(c.Queue.Concurrency, DefaultConcurrency)
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Logger = cmp.Or(c.Logger, slog.Default())
	c.Queue.Logger = cmp.Or(c.Queue.Logger, c.Logger)
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: DefaultTimeout}
	}
	return c, tags, nil
}

// rules checks the settings the environment gives (see Env) and returns the
// tags as labels. Errors name the variable and never quote a secret.
func (c Config) rules() (map[string]string, error) {
	if c.URL == "" {
		return nil, envcfg.Bad("REMOTE_WRITE_URL", "empty")
	}
	if err := cmp.Or(envcfg.URL("REMOTE_WRITE_URL", c.URL, false), envcfg.NoneOf("REMOTE_WRITE_USER", c.User, ":"), // the first refusal
		envcfg.Together("REMOTE_WRITE_USER", c.User, "REMOTE_WRITE_PASSWORD", c.Password, "for Basic auth")); err != nil {
		return nil, err
	}
	if c.User != "" && c.BearerToken != "" {
		return nil, errors.New("REMOTE_WRITE_BEARER_TOKEN and REMOTE_WRITE_USER/REMOTE_WRITE_PASSWORD exclude each other: set one kind of auth")
	}
	if err := outlet.CheckHeaders(c.Headers, "X-Prometheus-Remote-Write-Version"); err != nil {
		return nil, envcfg.Bad("REMOTE_WRITE_HEADERS", "%v", err)
	}
	for name := range c.Headers {
		if strings.EqualFold(name, "Authorization") && (c.User != "" || c.BearerToken != "") {
			return nil, errors.New("REMOTE_WRITE_HEADERS sets Authorization, which REMOTE_WRITE_USER or REMOTE_WRITE_BEARER_TOKEN sets too: use one")
		}
	}
	tags := make(map[string]string, len(c.Tags))
	for name, value := range c.Tags {
		n := SanitizeLabelName(name)
		switch {
		case n == labelSource || n == labelQuantile || strings.HasPrefix(n, "__"):
			return nil, envcfg.Bad("METRICS_TAGS", "for remote write: tag %q: label name %s is reserved", name, n)
		case value == "":
			return nil, envcfg.Bad("METRICS_TAGS", "for remote write: tag %q: empty value (Prometheus treats it as no label)", name)
		case !utf8.ValidString(value):
			return nil, envcfg.Bad("METRICS_TAGS", "for remote write: tag %q: value is not valid UTF-8", name)
		}
		if _, dup := tags[n]; dup {
			return nil, envcfg.Bad("METRICS_TAGS", "for remote write: tag %q: label name %s used twice after sanitizing", name, n)
		}
		tags[n] = value
	}
	return tags, nil
}

// ErrHeaders is wrapped by the errors ParseHeaders returns.
var ErrHeaders = errors.New("promwrite: invalid headers")

// ParseHeaders parses the REMOTE_WRITE_HEADERS format: comma-separated
// "Name:value" pairs, e.g. "X-Scope-OrgID:tenant1,Foo:bar". Spaces around
// names and values are trimmed; a value runs to the next comma, so values
// cannot contain commas. An empty string gives an empty map. Errors name the
// entry by position and never quote values, which may be secrets. Safe for
// concurrent use.
func ParseHeaders(s string) (map[string]string, error) {
	h := make(map[string]string)
	if strings.TrimSpace(s) == "" {
		return h, nil
	}
	for i, entry := range strings.Split(s, ",") {
		name, value, ok := strings.Cut(entry, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: entry %d: no ':' between name and value", ErrHeaders, i+1)
		case !outlet.ValidHeaderName(name):
			return nil, fmt.Errorf("%w: entry %d: header name is empty or not a valid HTTP token", ErrHeaders, i+1)
		case value == "":
			return nil, fmt.Errorf("%w: entry %d (%s): empty value", ErrHeaders, i+1, name)
		}
		canon := http.CanonicalHeaderKey(name)
		if _, dup := h[canon]; dup {
			return nil, fmt.Errorf("%w: entry %d (%s): header given twice", ErrHeaders, i+1, name)
		}
		h[canon] = value
	}
	return h, nil
}
