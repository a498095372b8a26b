package promwrite

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/outlet"
)

func TestSanitize(t *testing.T) {
	cases := map[string]struct{ in, metric, label string }{
		"clean":         {"http_requests", "http_requests", "http_requests"},
		"dots":          {"router.service", "router_service", "router_service"},
		"dash and dots": {"us-east.prod.app", "us_east_prod_app", "us_east_prod_app"},
		"colon":         {"job:rate5m", "job:rate5m", "job_rate5m"},
		"leading digit": {"5xx.errors", "_5xx_errors", "_5xx_errors"},
		"non-ASCII":     {"größe", "gr__e", "gr__e"},
		"space and %":   {"cpu %", "cpu__", "cpu__"},
		"empty":         {"", "_", "_"},
		"invalid UTF-8": {"a\xffb", "a_b", "a_b"},
	}
	for name, tc := range cases {
		if got := SanitizeMetricName(tc.in); got != tc.metric {
			t.Errorf("%s: SanitizeMetricName(%q) = %q, want %q", name, tc.in, got, tc.metric)
		}
		if got := SanitizeLabelName(tc.in); got != tc.label {
			t.Errorf("%s: SanitizeLabelName(%q) = %q, want %q", name, tc.in, got, tc.label)
		}
	}
}

func TestFamilyNames(t *testing.T) {
	cases := map[string]struct {
		prefix, name, unit string
		kind               metric.Kind
		want               family
	}{
		"counter": {name: "hits", kind: metric.Counter,
			want: family{base: "hits", total: "hits_total", factor: 1}},
		"counter already _total": {name: "hits.total", kind: metric.Counter,
			want: family{base: "hits_total", total: "hits_total", factor: 1}},
		"counter with unit": {name: "cpu", unit: "ms", kind: metric.Counter,
			want: family{base: "cpu_seconds", total: "cpu_seconds_total", factor: 1e-3}},
		"measure ms, prefix": {prefix: "us-east.prod.app", name: "router.service", unit: "ms", kind: metric.Measure,
			want: family{base: "us_east_prod_app_router_service_seconds", sum: "us_east_prod_app_router_service_seconds_sum",
				count: "us_east_prod_app_router_service_seconds_count", min: "us_east_prod_app_router_service_seconds_min",
				max: "us_east_prod_app_router_service_seconds_max", factor: 1e-3}},
		"prefix starting with digit": {prefix: "1app", name: "x", kind: metric.Sample,
			want: family{base: "_1app_x", factor: 1}},
		"sample MB":              {name: "memory_rss", unit: "MB", kind: metric.Sample, want: family{base: "memory_rss_bytes", factor: 1 << 20}},
		"sample kB":              {name: "memory-total", unit: "kB", kind: metric.Sample, want: family{base: "memory_total_bytes", factor: 1024}},
		"sample bytes":           {name: "db_size", unit: "bytes", kind: metric.Sample, want: family{base: "db_size_bytes", factor: 1}},
		"unit already in name":   {name: "latency_seconds", unit: "s", kind: metric.Sample, want: family{base: "latency_seconds", factor: 1}},
		"µs":                     {name: "gc", unit: "µs", kind: metric.Sample, want: family{base: "gc_seconds", factor: 1e-6}},
		"percent":                {name: "cpu", unit: "%", kind: metric.Sample, want: family{base: "cpu_percent", factor: 1}},
		"unknown unit appended":  {name: "memory_pgpgin", unit: "pages", kind: metric.Sample, want: family{base: "memory_pgpgin_pages", factor: 1}},
		"unknown unit sanitized": {name: "x", unit: "req/s", kind: metric.Sample, want: family{base: "x_req_s", factor: 1}},
	}
	for name, tc := range cases {
		if got := newFamily(tc.prefix, tc.name, tc.unit, tc.kind); got != tc.want {
			t.Errorf("%s:\ngot  %+v\nwant %+v", name, got, tc.want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	cases := map[string]struct {
		cfg  Config
		want string // error text after "promwrite: invalid config: "
	}{
		"no URL":        {Config{}, "REMOTE_WRITE_URL: empty"},
		"bad scheme":    {Config{URL: "ftp://h/x?key=s3cret"}, `REMOTE_WRITE_URL: scheme "ftp" is not http or https`},
		"no host":       {Config{URL: "http:///api/v1/write"}, "REMOTE_WRITE_URL: no host"},
		"unparsable":    {Config{URL: "http://h/%zz?key=s3cret"}, "REMOTE_WRITE_URL: not a URL"},
		"userinfo":      {Config{URL: "https://u:s3cret@h/x"}, "REMOTE_WRITE_URL: credentials in the URL"},
		"user only":     {Config{URL: "http://h", User: "u"}, "REMOTE_WRITE_USER is set but REMOTE_WRITE_PASSWORD is not"},
		"password only": {Config{URL: "http://h", Password: "s3cret"}, "REMOTE_WRITE_PASSWORD is set but REMOTE_WRITE_USER is not"},
		"user and bearer": {Config{URL: "http://h", User: "u", Password: "s3cret", BearerToken: "s3cret"},
			"REMOTE_WRITE_BEARER_TOKEN and REMOTE_WRITE_USER/REMOTE_WRITE_PASSWORD exclude each other"},
		"header name":     {Config{URL: "http://h", Headers: map[string]string{"Bad Name": "s3cret"}}, `REMOTE_WRITE_HEADERS: header name "Bad Name" is not a valid HTTP token`},
		"header CRLF":     {Config{URL: "http://h", Headers: map[string]string{"X-A": "s3cret\r\nX-B: 1"}}, "REMOTE_WRITE_HEADERS: header X-A: value contains a line break or NUL"},
		"reserved header": {Config{URL: "http://h", Headers: map[string]string{"content-encoding": "gzip"}}, "REMOTE_WRITE_HEADERS: header content-encoding is set by the protocol"},
		"auth conflict": {Config{URL: "http://h", BearerToken: "s3cret", Headers: map[string]string{"Authorization": "s3cret"}},
			"REMOTE_WRITE_HEADERS sets Authorization"},
		"tag source":      {Config{URL: "http://h", Tags: map[string]string{"source": "x"}}, `METRICS_TAGS: for remote write: tag "source": label name source is reserved`},
		"tag __":          {Config{URL: "http://h", Tags: map[string]string{"__name__": "x"}}, `METRICS_TAGS: for remote write: tag "__name__": label name __name__ is reserved`},
		"tag quantile":    {Config{URL: "http://h", Tags: map[string]string{"quantile": "x"}}, `METRICS_TAGS: for remote write: tag "quantile": label name quantile is reserved`},
		"tag empty value": {Config{URL: "http://h", Tags: map[string]string{"app": ""}}, `METRICS_TAGS: for remote write: tag "app": empty value (Prometheus treats it as no label)`},
		"tag bad UTF-8":   {Config{URL: "http://h", Tags: map[string]string{"app": "\xff"}}, `METRICS_TAGS: for remote write: tag "app": value is not valid UTF-8`},
		"tags collide": {Config{URL: "http://h", Tags: map[string]string{"a.b": "1", "a-b": "2"}},
			"label name a_b used twice after sanitizing"},
		"negative batch":   {Config{URL: "http://h", MaxSeriesPerRequest: -1}, "MaxSeriesPerRequest -1 is negative"},
		"negative tracked": {Config{URL: "http://h", MaxTrackedSeries: -1}, "MaxTrackedSeries -1 is negative"},
	}
	for name, tc := range cases {
		o, err := New(tc.cfg)
		if err == nil {
			o.Close(context.Background())
			t.Errorf("%s: no error", name)
			continue
		}
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v does not wrap ErrConfig", name, err)
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "promwrite: invalid config: ") {
			t.Errorf("%s: error %q, want %q", name, err, tc.want)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error contains a secret: %v", name, err)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c, tags, err := Config{URL: "http://h", Tags: map[string]string{"my.app": "shop"}}.check()
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxSeriesPerRequest != DefaultMaxSeriesPerRequest || c.MaxTrackedSeries != DefaultMaxTrackedSeries ||
		c.Queue.Name != QueueName || c.Queue.MaxAge != DefaultMaxAge || c.Queue.Concurrency != DefaultConcurrency ||
		c.Logger == nil || c.Queue.Logger == nil || c.HTTPClient == nil || c.HTTPClient.Timeout != DefaultTimeout {
		t.Errorf("defaults not applied: %+v", c)
	}
	if !maps.Equal(tags, map[string]string{"my_app": "shop"}) {
		t.Errorf("tags %v", tags)
	}
	c, _, _ = Config{URL: "http://h", Queue: outlet.QueueConfig{Concurrency: 4, MaxAge: 1}}.check()
	if c.Queue.Concurrency != 4 || c.Queue.MaxAge != 1 {
		t.Errorf("explicit queue settings replaced: %+v", c.Queue)
	}
}

func TestParseHeaders(t *testing.T) {
	cases := map[string]struct {
		in   string
		want map[string]string
		err  string
	}{
		"empty":       {in: "", want: map[string]string{}},
		"blank":       {in: "  ", want: map[string]string{}},
		"two":         {in: "X-Scope-OrgID:tenant1,Foo:bar", want: map[string]string{"X-Scope-Orgid": "tenant1", "Foo": "bar"}},
		"spaces":      {in: " X-A : 1 , x-b:two words", want: map[string]string{"X-A": "1", "X-B": "two words"}},
		"colon value": {in: "Authorization:Basic a:b", want: map[string]string{"Authorization": "Basic a:b"}},
		"no colon":    {in: "X-A:1,secretvalue", err: "promwrite: invalid headers: entry 2: no ':' between name and value"},
		"bad name":    {in: "X A:secret", err: "promwrite: invalid headers: entry 1: header name is empty or not a valid HTTP token"},
		"empty name":  {in: ":secret", err: "promwrite: invalid headers: entry 1: header name is empty or not a valid HTTP token"},
		"empty value": {in: "X-A:", err: "promwrite: invalid headers: entry 1 (X-A): empty value"},
		"trailing ,":  {in: "X-A:1,", err: "promwrite: invalid headers: entry 2: no ':' between name and value"},
		"duplicate":   {in: "X-A:1,x-a:secret", err: "promwrite: invalid headers: entry 2 (x-a): header given twice"},
	}
	for name, tc := range cases {
		got, err := ParseHeaders(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err || !errors.Is(err, ErrHeaders) {
				t.Errorf("%s: error %v, want %q", name, err, tc.err)
			}
			continue
		}
		if err != nil || !maps.Equal(got, tc.want) {
			t.Errorf("%s: got %v, %v; want %v", name, got, err, tc.want)
		}
	}
}

func TestErrorBodyBound(t *testing.T) {
	long := strings.Repeat("x", outlet.MaxErrorBody*3)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, long, http.StatusBadRequest)
	}))
	defer srv.Close()
	cfg, _, _ := Config{URL: srv.URL}.check()
	err := newSender(cfg).Send(context.Background(), &outlet.Batch{N: 1})
	if err == nil || !strings.Contains(err.Error(), `"`+long[:outlet.MaxErrorBody]+`"`) || strings.Contains(err.Error(), long[:outlet.MaxErrorBody+1]) {
		t.Fatalf("error not bounded to %d body bytes: %.80v", outlet.MaxErrorBody, err)
	}
}

// TestEnvValidate: the remote-write rules, tags as labels included, apply
// only when REMOTE_WRITE_URL enables the outlet; errors name the variable.
func TestEnvValidate(t *testing.T) {
	const url = "http://127.0.0.1:9090/api/v1/write"
	tests := map[string]struct {
		env  Env
		tags map[string]string
		want string // "" for no error
	}{
		"off, tags it refuses": {Env{}, map[string]string{"source": "x"}, ""},
		"off, token set":       {Env{BearerToken: "s3cret"}, nil, "is set but REMOTE_WRITE_URL is not"},
		"on":                   {Env{URL: url, Headers: "X-Scope-OrgID:tenant1"}, map[string]string{"Region": "us"}, ""},
		"on, reserved label":   {Env{URL: url}, map[string]string{"source": "x"}, "METRICS_TAGS: for remote write: tag \"source\": label name source is reserved"},
		"on, header syntax":    {Env{URL: url, Headers: "Authorization s3cret"}, nil, "REMOTE_WRITE_HEADERS: entry 1: no ':' between name and value"},
		"on, reserved header":  {Env{URL: url, Headers: "Host:x"}, nil, "REMOTE_WRITE_HEADERS: header Host is set by the protocol"},
		"on, user with colon":  {Env{URL: url, User: "a:b", Password: "s3cret"}, nil, `REMOTE_WRITE_USER: contains ':'`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.env.Validate(tc.tags)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "s3cret"):
				t.Fatalf("secret in error %q", err)
			}
		})
	}
}
