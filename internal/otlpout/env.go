package otlpout

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/dynometrics/dynometrics/internal/envcfg"
	"github.com/dynometrics/dynometrics/internal/outlet"
)

// MetricsPath is appended to OTEL_EXPORTER_OTLP_ENDPOINT, unless it
// already ends in it.
const MetricsPath = "v1/metrics"

// Env holds the raw values of the standard OpenTelemetry exporter variables,
// read with envconfig. Where a _METRICS_ form is set (non-empty) it wins over
// the general one, as the OpenTelemetry specification says; the whole value
// wins, so METRICS_HEADERS replaces HEADERS rather than adding to it.
type Env struct {
	Endpoint           string `envconfig:"OTEL_EXPORTER_OTLP_ENDPOINT" accepts:"an http(s) base URL; /v1/metrics is appended unless it already ends so" desc:"OTLP/HTTP base URL; set (or the next): enables the OTLP outlet"`
	MetricsEndpoint    string `envconfig:"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT" accepts:"an http(s) URL, used as is" desc:"OTLP/HTTP metrics URL; wins over OTEL_EXPORTER_OTLP_ENDPOINT"`
	Headers            string `envconfig:"OTEL_EXPORTER_OTLP_HEADERS" secret:"true" accepts:"key=value pairs separated by commas, values URL-encoded (authorization=Bearer%20TOKEN)" desc:"request headers, e.g. the vendor's API key"`
	MetricsHeaders     string `envconfig:"OTEL_EXPORTER_OTLP_METRICS_HEADERS" secret:"true" accepts:"as OTEL_EXPORTER_OTLP_HEADERS" desc:"wins over OTEL_EXPORTER_OTLP_HEADERS"`
	Protocol           string `envconfig:"OTEL_EXPORTER_OTLP_PROTOCOL" accepts:"http/protobuf (default) or http/json" desc:"OTLP/HTTP body encoding"`
	MetricsProtocol    string `envconfig:"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL" accepts:"http/protobuf or http/json" desc:"wins over OTEL_EXPORTER_OTLP_PROTOCOL"`
	Compression        string `envconfig:"OTEL_EXPORTER_OTLP_COMPRESSION" accepts:"gzip (default) or none" desc:"request body compression"`
	MetricsCompression string `envconfig:"OTEL_EXPORTER_OTLP_METRICS_COMPRESSION" accepts:"gzip or none" desc:"wins over OTEL_EXPORTER_OTLP_COMPRESSION"`
	Timeout            string `envconfig:"OTEL_EXPORTER_OTLP_TIMEOUT" accepts:"milliseconds from 1 to 3600000 (default 10000), or a duration such as 10s" desc:"per-request timeout"`
	MetricsTimeout     string `envconfig:"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT" accepts:"as OTEL_EXPORTER_OTLP_TIMEOUT" desc:"wins over OTEL_EXPORTER_OTLP_TIMEOUT"`
	Temporality        string `envconfig:"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE" accepts:"cumulative (default), delta, or lowmemory (= delta here)" desc:"temporality of sums and histograms"`
	ResourceAttributes string `envconfig:"OTEL_RESOURCE_ATTRIBUTES" accepts:"key=value pairs separated by commas, values URL-encoded" desc:"resource attributes of the OTLP outlet"`
	ServiceName        string `envconfig:"OTEL_SERVICE_NAME" accepts:"a service name without control characters (default unknown_service)" desc:"service.name of the OTLP outlet's resource"`
}

// Validate checks the variables when an endpoint enables the outlet, with
// the tags (METRICS_TAGS, parsed neutrally), and OTEL_SERVICE_NAME always.
// Errors name the variable and never quote a header value or an endpoint's
// credentials.
func (e Env) Validate(tags map[string]string) error {
	if !e.Enabled() {
		return serviceNameProblem(e.ServiceName)
	}
	_, err := e.Config()
	return errors.Join(err, checkTags(tags))
}

func serviceNameProblem(s string) error {
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		return envcfg.Bad("OTEL_SERVICE_NAME", "control character at byte %d", i)
	}
	return nil
}

// Enabled reports whether an endpoint is set: the OTLP outlet runs only then
// (the specification's default, http://localhost:4318, would send nowhere
// useful on Heroku).
func (e Env) Enabled() bool {
	return strings.TrimSpace(e.Endpoint) != "" || strings.TrimSpace(e.MetricsEndpoint) != ""
}

// pick returns the metrics-specific value when set, else the general one,
// with the name of the variable it came from: OTEL_EXPORTER_OTLP_METRICS_
// or OTEL_EXPORTER_OTLP_ followed by what.
func pick(general, metrics, what string) (string, string) {
	if v := strings.TrimSpace(metrics); v != "" {
		return v, "OTEL_EXPORTER_OTLP_METRICS_" + what
	}
	return strings.TrimSpace(general), "OTEL_EXPORTER_OTLP_" + what
}

// Config returns the connection part of a Config (Endpoint, Headers,
// Protocol, Compression, Timeout, Temporality, Resource) from e. Errors name
// the variable and what it accepts, and never quote a header value or an
// endpoint's query or credentials. Values of PROTOCOL, COMPRESSION and
// TEMPORALITY_PREFERENCE are case-insensitive. TIMEOUT is in milliseconds
// (the specification's unit; a Go duration such as "10s" is accepted too).
func (e Env) Config() (Config, error) {
	var c Config
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if v, name := pick(e.Endpoint, e.MetricsEndpoint, "ENDPOINT"); v == "" {
		fail("OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: not set")
	} else if err := envcfg.URL(name, v, false); err != nil {
		errs = append(errs, err)
	} else if c.Endpoint = v; name == "OTEL_EXPORTER_OTLP_ENDPOINT" {
		// A generic endpoint that already ends in /v1/metrics is used as
		// is (without a trailing slash): appending would give
		// …/v1/metrics/v1/metrics.
		u, _ := url.Parse(v)
		u.Path = strings.TrimSuffix(u.Path, "/")
		if !strings.HasSuffix(u.Path, "/"+MetricsPath) {
			u.Path += "/" + MetricsPath
		}
		u.RawPath = ""
		c.Endpoint = u.String()
	}

	if v, name := pick(e.Headers, e.MetricsHeaders, "HEADERS"); v != "" {
		h, err := ParseHeaders(v)
		if err = cmp.Or(err, outlet.CheckHeaders(h)); err != nil { // the parse error first
			fail("%s: %w", name, err)
		}
		c.Headers = h
	}
	v, name := pick(e.Protocol, e.MetricsProtocol, "PROTOCOL")
	if c.Protocol = cmp.Or(Protocol(strings.ToLower(v)), HTTPProtobuf); c.Protocol == "grpc" {
		fail("%s=grpc: not supported; want http/protobuf (the default) or http/json, with the OTLP/HTTP endpoint (port 4318 on a Collector)", name)
	} else if c.Protocol != HTTPProtobuf && c.Protocol != HTTPJSON {
		fail("%s=%q: want http/protobuf or http/json", name, v)
	}
	v, name = pick(e.Compression, e.MetricsCompression, "COMPRESSION")
	if c.Compression = cmp.Or(strings.ToLower(v), CompressionGzip); c.Compression != CompressionGzip && c.Compression != CompressionNone {
		fail("%s=%q: want gzip or none", name, v)
	}
	if v, name := pick(e.Timeout, e.MetricsTimeout, "TIMEOUT"); v != "" {
		d, err := parseTimeout(v)
		if err != nil {
			fail("%s=%q: %w", name, v, err)
		}
		c.Timeout = d
	}
	switch strings.ToLower(strings.TrimSpace(e.Temporality)) {
	case "", "cumulative": // the zero Temporality
	case "delta", "lowmemory":
		c.Temporality = Delta
	default:
		fail("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=%q: want cumulative (the default), delta or lowmemory (delta here)", e.Temporality)
	}
	var err error
	if c.Resource, err = ParseAttributes(e.ResourceAttributes); err != nil { // a blank value gives an empty map
		fail("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	errs = append(errs, serviceNameProblem(e.ServiceName)) // errors.Join drops nil
	c.Resource[ServiceNameKey] = cmp.Or(strings.TrimSpace(e.ServiceName), c.Resource[ServiceNameKey], DefaultServiceName)
	return c, errors.Join(errs...)
}

// parseTimeout reads milliseconds ("10000") or a Go duration ("10s").
func parseTimeout(v string) (time.Duration, error) {
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		if ms <= 0 || ms > int64(time.Hour/time.Millisecond) {
			return 0, errors.New("want milliseconds between 1 and 3600000")
		}
		return time.Duration(ms) * time.Millisecond, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > time.Hour {
		return 0, errors.New("want milliseconds, e.g. 10000 (or a duration such as 10s), at most an hour")
	}
	return d, nil
}

// ErrList is wrapped by the errors ParseHeaders and ParseAttributes return.
var ErrList = errors.New("invalid key=value list")

// ParseHeaders parses the OTEL_EXPORTER_OTLP_HEADERS format: comma-separated
// key=value pairs, values percent-decoded ("Authorization=Bearer%20abc"),
// spaces around keys and values trimmed, empty entries skipped. Keys must be
// HTTP tokens and appear once (case-insensitively). Errors name the entry by
// position and never quote a value, which is usually a secret. Safe for
// concurrent use.
func ParseHeaders(s string) (map[string]string, error) {
	return parseList(s, "header", func(i int, k, v string) (string, error) {
		if !outlet.ValidHeaderName(k) {
			return "", fmt.Errorf("%w: entry %d: header name is not a valid HTTP token", ErrList, i)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return "", fmt.Errorf("%w: entry %d (%s): value contains a line break or NUL", ErrList, i, k)
		}
		return http.CanonicalHeaderKey(k), nil
	})
}

// ParseAttributes parses the OTEL_RESOURCE_ATTRIBUTES format:
// comma-separated key=value pairs, values percent-decoded, spaces trimmed,
// empty entries skipped, each key once. Safe for concurrent use.
func ParseAttributes(s string) (map[string]string, error) {
	return parseList(s, "key", func(_ int, k, _ string) (string, error) { return k, nil })
}

// parseList splits s into key=value entries, the keys checked and made
// canonical by canon (called with the entry's 1-based position) and given
// once each; errors never quote a value. The map holds the entries before
// the first error.
func parseList(s, what string, canon func(i int, k, v string) (string, error)) (map[string]string, error) {
	out := map[string]string{}
	for i, entry := range strings.Split(s, ",") {
		if strings.TrimSpace(entry) == "" {
			continue
		}
		k, v, ok := strings.Cut(entry, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case !ok:
			return out, fmt.Errorf("%w: entry %d: no '=' between key and value", ErrList, i+1)
		case k == "":
			return out, fmt.Errorf("%w: entry %d: empty key", ErrList, i+1)
		}
		dk, err := url.PathUnescape(k)
		if err != nil {
			return out, fmt.Errorf("%w: entry %d: key is not valid percent-encoding", ErrList, i+1)
		}
		dv, err := url.PathUnescape(v)
		if err != nil {
			return out, fmt.Errorf("%w: entry %d: value is not valid percent-encoding", ErrList, i+1)
		}
		key, err := canon(i+1, dk, dv)
		if err != nil {
			return out, err
		}
		if _, dup := out[key]; dup {
			return out, fmt.Errorf("%w: entry %d (%s): %s given twice", ErrList, i+1, dk, what)
		}
		out[key] = dv
	}
	return out, nil
}
