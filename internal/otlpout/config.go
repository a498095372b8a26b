package otlpout

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/dynometrics/dynometrics/internal/envcfg"
	"github.com/dynometrics/dynometrics/internal/outlet"
)

// Protocol is the OTLP/HTTP body encoding.
type Protocol string

// The OTLP/HTTP encodings (OTEL_EXPORTER_OTLP_PROTOCOL); gRPC is not
// supported.
const (
	HTTPProtobuf Protocol = "http/protobuf" // binary protobuf, Content-Type application/x-protobuf (default)
	HTTPJSON     Protocol = "http/json"     // OTLP JSON, Content-Type application/json
)

// Temporality is the aggregation temporality of sums and histograms.
type Temporality int

// The temporalities (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE).
const (
	// Cumulative (the default) sends running totals since a start time:
	// what Prometheus-style backends (Grafana Cloud, Mimir) want.
	Cumulative Temporality = iota
	// Delta sends each bucket's own sum and histogram, start = bucket
	// start: what Datadog and SolarWinds prefer. "lowmemory" means Delta
	// here, since count# and measure# behave like synchronous Counters and
	// Histograms, which lowmemory sends as delta.
	Delta
)

// String returns "cumulative" or "delta".
func (t Temporality) String() string {
	if t == Delta {
		return "delta"
	}
	return "cumulative"
}

// Compression values (OTEL_EXPORTER_OTLP_COMPRESSION).
const (
	CompressionGzip = "gzip"
	CompressionNone = "none"
)

// Defaults and bounds for the zero values of Config.
const (
	// DefaultTimeout is the per-request timeout, the OpenTelemetry default
	// of OTEL_EXPORTER_OTLP_TIMEOUT (10,000 ms).
	DefaultTimeout = 10 * time.Second

	// DefaultMaxPointsPerRequest bounds the data points of one request.
	DefaultMaxPointsPerRequest = 1000

	// DefaultMaxRequestBytes bounds the size of one request body before
	// compression, as estimated (from above) while it is built: 400 KiB,
	// below the smallest limit of the common receivers (Datadog's OTLP
	// intake refuses more than 500 KB uncompressed with 413). With
	// http/json the bound applies to a quarter of the protobuf estimate,
	// JSON being about 3 times larger.
	DefaultMaxRequestBytes = 400 << 10

	// DefaultMaxTrackedSeries bounds the cumulative sums kept in memory
	// (Cumulative temporality only, about 150 bytes each). At the bound the
	// least recently updated series is forgotten (Stats.Evicted): when it
	// comes back its sum starts again with a new start time, which OTLP
	// defines as a reset.
	DefaultMaxTrackedSeries = 50_000

	// DefaultMaxTrackedHistograms bounds the cumulative histograms kept in
	// memory (Cumulative only; at most 2·DefaultMaxBuckets counts, 2.6 KB,
	// each, so about 26 MB at the bound), forgotten like sums.
	DefaultMaxTrackedHistograms = 10_000

	// QueueName is the default Queue.Name, used in logs, and the outlet
	// name Bucket.Done receives.
	QueueName = "otlp"

	// UserAgent is the User-Agent of every request.
	UserAgent = "dynometrics-otlpout/1.0"

	// PartialLogEvery is the minimum interval between two log lines about
	// partial successes (the counts are kept in Stats either way).
	PartialLogEvery = time.Minute

	// ServiceNameKey is the resource attribute OTEL_SERVICE_NAME sets.
	ServiceNameKey = "service.name"

	// DefaultServiceName is service.name when neither OTEL_SERVICE_NAME nor
	// OTEL_RESOURCE_ATTRIBUTES names the service, as the OpenTelemetry
	// resource specification says.
	DefaultServiceName = "unknown_service"

	// SourceKey is the data point attribute that carries the dyno (or
	// add-on, or router): Librato's "source".
	SourceKey = "source"
)

// ErrConfig is wrapped by every error New returns.
var ErrConfig = errors.New("otlp: invalid config")

// Config configures an Outlet. Zero values mean the documented defaults.
// Env.Config fills the connection fields from the standard OpenTelemetry
// variables.
type Config struct {
	// Endpoint is the full URL requests are POSTed to, e.g.
	// https://otlp.example.com/v1/metrics. Required; http or https; no
	// credentials in the URL (use Headers).
	Endpoint string
	// Headers are added to every request, e.g. {"Authorization": "Bearer
	// …"}. They may not set Content-Type, Content-Encoding, Content-Length
	// or Host. Values are secrets: they never appear in errors or logs.
	Headers map[string]string
	// Protocol is HTTPProtobuf (default) or HTTPJSON.
	Protocol Protocol
	// Compression is CompressionGzip (default, as the Collector's otlphttp
	// exporter) or CompressionNone.
	Compression string
	// Timeout bounds each request (default DefaultTimeout); a request that
	// times out is retried.
	Timeout time.Duration
	// Temporality of sums and histograms (default Cumulative).
	Temporality Temporality
	// Resource attributes of every request (OTEL_RESOURCE_ATTRIBUTES and
	// OTEL_SERVICE_NAME); service.name defaults to DefaultServiceName.
	Resource map[string]string

	// Prefix is joined to every metric name with ".": "us-east.prod.app"
	// and "router.service" give "us-east.prod.app.router.service".
	Prefix string
	// Tags are attributes of every data point (METRICS_TAGS). "source" is
	// reserved for the dyno; values must be valid UTF-8.
	Tags map[string]string

	// MaxPointsPerRequest bounds the data points of one request (default
	// DefaultMaxPointsPerRequest).
	MaxPointsPerRequest int
	// MaxRequestBytes bounds the size of one request body before
	// compression (default DefaultMaxRequestBytes). A single data point
	// larger than this is still sent, alone.
	MaxRequestBytes int
	// MaxBuckets bounds the buckets of each sign of a histogram data point
	// (default DefaultMaxBuckets).
	MaxBuckets int
	// MaxTrackedSeries and MaxTrackedHistograms bound the cumulative state
	// (defaults DefaultMaxTrackedSeries, DefaultMaxTrackedHistograms).
	MaxTrackedSeries, MaxTrackedHistograms int

	// Queue tunes delivery. Zero fields take the outlet package's defaults,
	// except Name (QueueName) and Concurrency (1, so that cumulative points
	// of a series arrive in order).
	Queue outlet.QueueConfig
	// HTTPClient sends the requests (default: http.DefaultClient's settings);
	// Timeout bounds each request either way.
	HTTPClient *http.Client
	// Logger receives the outlet's and its queue's messages (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock that keeps data point times out of the future
	// (default time.Now).
	Now func() time.Time
}

// check validates c and returns it with defaults applied.
func (c Config) check() (Config, error) {
	if c.Endpoint == "" {
		return c, fmt.Errorf("%w: Endpoint is empty", ErrConfig)
	}
	if err := cmp.Or(envcfg.URL("endpoint", c.Endpoint, false), outlet.CheckHeaders(c.Headers)); err != nil { // the first refusal
		return c, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.Protocol = cmp.Or(c.Protocol, HTTPProtobuf); c.Protocol != HTTPProtobuf && c.Protocol != HTTPJSON {
		return c, fmt.Errorf("%w: protocol %q: want %s or %s", ErrConfig, c.Protocol, HTTPProtobuf, HTTPJSON)
	}
	if c.Compression = cmp.Or(c.Compression, CompressionGzip); c.Compression != CompressionGzip && c.Compression != CompressionNone {
		return c, fmt.Errorf("%w: compression %q: want gzip or none", ErrConfig, c.Compression)
	}
	if c.Temporality != Cumulative && c.Temporality != Delta {
		return c, fmt.Errorf("%w: temporality %d: want Cumulative or Delta", ErrConfig, c.Temporality)
	}
	if c.Timeout < 0 {
		return c, fmt.Errorf("%w: timeout %s is negative", ErrConfig, c.Timeout)
	}
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	res := make(map[string]string, len(c.Resource)+1)
	for k, v := range c.Resource {
		if k == "" || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return c, fmt.Errorf("%w: resource attribute %q: name empty or not UTF-8, or value not UTF-8", ErrConfig, k)
		}
		res[k] = v
	}
	res[ServiceNameKey] = cmp.Or(res[ServiceNameKey], DefaultServiceName)
	c.Resource = res
	if err := checkTags(c.Tags); err != nil {
		return c, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if !utf8.ValidString(c.Prefix) {
		return c, fmt.Errorf("%w: prefix is not valid UTF-8", ErrConfig)
	}
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"MaxPointsPerRequest", &c.MaxPointsPerRequest, DefaultMaxPointsPerRequest},
		{"MaxRequestBytes", &c.MaxRequestBytes, DefaultMaxRequestBytes},
		{"MaxBuckets", &c.MaxBuckets, DefaultMaxBuckets},
		{"MaxTrackedSeries", &c.MaxTrackedSeries, DefaultMaxTrackedSeries},
		{"MaxTrackedHistograms", &c.MaxTrackedHistograms, DefaultMaxTrackedHistograms},
	} {
		if *f.v < 0 {
			return c, fmt.Errorf("%w: %s %d is negative", ErrConfig, f.name, *f.v)
		}
		*f.v = cmp.Or(*f.v, f.def)
	}
	if c.MaxBuckets < 2 {
		return c, fmt.Errorf("%w: MaxBuckets %d: want at least 2", ErrConfig, c.MaxBuckets)
	}
	c.Queue.Name = cmp.Or(c.Queue.Name, QueueName)
	c.Queue.Concurrency = cmp.Or(c.Queue.Concurrency, 1)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	c.Queue.Logger = cmp.Or(c.Queue.Logger, c.Logger)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// checkTags holds METRICS_TAGS to what OTLP attributes allow here.
func checkTags(tags map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		switch v := tags[k]; {
		case k == SourceKey:
			return envcfg.Bad("METRICS_TAGS", "for OTLP: tag %q is reserved for the dyno", k)
		case k == "" || !utf8.ValidString(k) || !utf8.ValidString(v):
			return envcfg.Bad("METRICS_TAGS", "for OTLP: tag %q: name empty or not UTF-8, or value not UTF-8", k)
		}
	}
	return nil
}
