package librato

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/outlet"
)

const (
	// DefaultURL is the Librato API base URL.
	DefaultURL = "https://metrics-api.librato.com"
	// DefaultTimeout bounds one request, connection to last response byte.
	DefaultTimeout = 10 * time.Second
	// userAgent identifies the outlet to the receiver.
	userAgent = "dynometrics-librato/1"
)

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
	HTTPClient *http.Client       // default: http.DefaultClient's settings; Timeout bounds each request either way
	Timeout    time.Duration      // per request (default DefaultTimeout)
	Logger     *slog.Logger       // default slog.Default()
}

// Stats are cumulative counts since the Outlet started; the metric tags
// name the self-metrics under worker.outlet.librato.
type Stats struct {
	outlet.Stats `metric:""` // buckets, closed drops, the queue
	Series       int64       `metric:"-"`                   // series encoded (a volume)
	Measurements int64       `metric:"-"`                   // measurements encoded (a measure# series makes four)
	Batches      int64       `metric:"-"`                   // request bodies queued
	Skipped      int64       `metric:"series_skipped,drop"` // series of which nothing could be sent: empty name, or its value is one Librato refuses (NaN, Inf, |v| ≥ 1e126)
	Dropped      int64       `metric:"fields_dropped,drop"` // optional fields (min, max, sum_squares, last) and percentile gauges left out: value Librato refuses
	Collisions   int64       `metric:"collisions,drop"`     // measurements left out: the bucket already held one with the same name and source after sanitizing
}

// Outlet sends flushed buckets to Librato (or an AppOptics-compatible
// endpoint). Safe for concurrent use.
type Outlet struct {
	*outlet.Base // Close and the skeleton
	log          *slog.Logger
	enc          *encoder // guarded by Base
	stats        Stats    // guarded by Base
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
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	cfg.Queue.Logger = cmp.Or(cfg.Queue.Logger, cfg.Logger)
	s := newSender(cfg, strings.TrimRight(u.String(), "/"))
	return &Outlet{
		Base: outlet.NewBase("librato", s, cfg.Queue),
		log:  cfg.Logger,
		enc:  newEncoder(cfg.API == APIMeasurements, cfg.Prefix, cfg.Tags),
	}, nil
}

// newSender returns the sender of cfg (defaults applied) to the API base URL.
func newSender(cfg Config, base string) *outlet.HTTPSender {
	user, pass := cfg.User, cfg.Token
	if cfg.User == "" { // AppOptics: the token is the user, the password is empty
		user, pass = cfg.Token, ""
	}
	return outlet.NewHTTPSender(outlet.HTTPConfig{
		Name: "librato", URL: base + "/v1/" + cfg.API, Unit: "measurements",
		Client: cfg.HTTPClient, Timeout: cfg.Timeout,
		Header: http.Header{"Content-Type": {"application/json"}, "User-Agent": {userAgent}},
		User:   user, Password: pass, Secrets: []string{cfg.Token},
	})
}

// Write encodes b into request bodies of at most MaxMetricsPerPost (legacy) or
// MaxMeasurementsPerPost (tagged) measurements and queues them. It does not
// wait for the network. b is not kept.
func (o *Outlet) Write(b *aggregate.Bucket) { o.Base.Write(b, o.encode) }

// encode runs with the Base's lock held.
func (o *Outlet) encode(b *aggregate.Bucket) ([]outlet.Batch, error) {
	var batches []outlet.Batch
	st := o.enc.encode(b, func(body []byte, n int) {
		batches = append(batches, outlet.Batch{Body: body, N: n, Time: b.Start})
	})
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
	return batches, nil
}

// Stats returns the outlet's counters.
func (o *Outlet) Stats() Stats {
	var st Stats
	st.Stats = o.Base.Stats(func() { st = o.stats })
	return st
}
