package librato

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/outlet"
	"github.com/dynometrics/dynometrics/internal/redact"
)

// DefaultURL is the Librato API base URL.
const DefaultURL = "https://metrics-api.librato.com"

// The two APIs, the values of Config.API.
const (
	// APIMetrics is the legacy source-based API: POST /v1/metrics.
	APIMetrics = "metrics"
	// APIMeasurements is the tagged API, also served by AppOptics:
	// POST /v1/measurements.
	APIMeasurements = "measurements"
)

// ErrConfig is wrapped by every error New returns.
var ErrConfig = errors.New("librato: invalid configuration")

// Config configures an Outlet. Zero values mean the documented defaults.
type Config struct {
	User  string // LIBRATO_USER: account email; empty on APIMeasurements means the AppOptics form (token as user)
	Token string // LIBRATO_TOKEN: API token (required)
	URL   string // LIBRATO_URL: base URL without /v1 (default DefaultURL); must not contain credentials
	API   string // LIBRATO_API: APIMetrics (default) or APIMeasurements

	Prefix string            // METRICS_PREFIX: prepended to every name with a dot
	Tags   map[string]string // METRICS_TAGS, lower-cased and checked (ValidateTags): sent on APIMeasurements only

	Queue      outlet.QueueConfig // delivery bounds; Name defaults to "librato"
	HTTPClient *http.Client       // default: a client with Timeout = Timeout
	Timeout    time.Duration      // per request (default DefaultTimeout)
	Logger     *slog.Logger       // default slog.Default()
}

// Stats are cumulative counts since the Outlet started.
type Stats struct {
	Queue        outlet.QueueStats
	Buckets      int64 // buckets written
	Series       int64 // series encoded
	Measurements int64 // measurements encoded (a measure# series makes four)
	Batches      int64 // request bodies queued
	Skipped      int64 // series of which nothing could be sent: empty name, or its value is one Librato refuses (NaN, Inf, |v| ≥ 1e126)
	Dropped      int64 // optional fields (min, max, sum_squares, last) and percentile gauges left out: value Librato refuses
	Collisions   int64 // measurements left out: the bucket already held one with the same name and source after sanitizing
}

// Outlet sends flushed buckets to Librato (or an AppOptics-compatible
// endpoint). Safe for concurrent use.
type Outlet struct {
	q   *outlet.Queue
	log *slog.Logger

	mu    sync.Mutex // guards enc and stats
	enc   *encoder
	stats Stats
}

var _ outlet.Outlet = (*Outlet)(nil)

// New validates cfg and returns a running Outlet. Call Close to stop it.
func New(cfg Config) (*Outlet, error) {
	cfg, u, err := cfg.check()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Queue.Name == "" {
		cfg.Queue.Name = "librato"
	}
	if cfg.Queue.Logger == nil {
		cfg.Queue.Logger = cfg.Logger
	}
	path := "/v1/" + cfg.API
	s := &httpSender{
		client:   cfg.HTTPClient,
		endpoint: strings.TrimRight(u.String(), "/") + path,
		path:     path,
		user:     cfg.User,
		pass:     cfg.Token,
		timeout:  cfg.Timeout,
	}
	if cfg.User == "" { // AppOptics: the token is the user, the password is empty
		s.user, s.pass = cfg.Token, ""
	}
	s.redact = redact.New(cfg.Token).Basic(s.user, s.pass)
	return &Outlet{
		q:   outlet.NewQueue(s, cfg.Queue),
		log: cfg.Logger,
		enc: newEncoder(cfg.API == APIMeasurements, sanitizePrefix(cfg.Prefix), cfg.Tags),
	}, nil
}

// Write encodes b into request bodies of at most MaxMetricsPerPost (legacy) or
// MaxMeasurementsPerPost (tagged) measurements and queues them. It does not
// wait for the network. b is not kept.
func (o *Outlet) Write(b *aggregate.Bucket) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var batches []outlet.Batch
	st := o.enc.encode(b, func(body []byte, n int) {
		batches = append(batches, outlet.Batch{Body: body, N: n, Time: b.Start})
	})
	outlet.PushBucket(o.q, "librato", b, batches)
	o.stats.Buckets++
	o.stats.Series += int64(st.series)
	o.stats.Measurements += int64(st.measurements)
	o.stats.Batches += int64(st.batches)
	o.stats.Skipped += int64(st.skipped)
	o.stats.Dropped += int64(st.fieldsDropped)
	o.stats.Collisions += int64(st.collisions)
	// One line per bucket at most: these repeat as long as the input does.
	if st.skipped > 0 || st.fieldsDropped > 0 {
		o.log.Warn("librato: values out of range not sent (NaN, Inf or |v| ≥ 1e126), or series without a name",
			"series_skipped", st.skipped, "fields_dropped", st.fieldsDropped, "bucket", b.Start)
	}
	if st.collisions > 0 {
		o.log.Warn("librato: series with the same name and source after sanitizing in one bucket, kept the first",
			"dropped", st.collisions, "bucket", b.Start)
	}
}

// Close stops the outlet, delivering what is queued until ctx ends; see
// outlet.Queue.Close.
func (o *Outlet) Close(ctx context.Context) error { return o.q.Close(ctx) }

// Stats returns the outlet's counters.
func (o *Outlet) Stats() Stats {
	o.mu.Lock()
	st := o.stats
	o.mu.Unlock()
	st.Queue = o.q.Stats()
	return st
}
