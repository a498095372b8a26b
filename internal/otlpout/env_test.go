package otlpout

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"
)

func TestEnvConfig(t *testing.T) {
	tests := map[string]struct {
		env     Env
		want    Config
		wantErr []string // substrings of the error; nil: no error
	}{
		"base endpoint gets the signal path": {
			env:  Env{Endpoint: "https://otlp.example.com"},
			want: Config{Endpoint: "https://otlp.example.com/v1/metrics"},
		},
		"base endpoint with a path and a slash": {
			env:  Env{Endpoint: "https://otlp-gateway-prod-eu-west-2.grafana.net/otlp/"},
			want: Config{Endpoint: "https://otlp-gateway-prod-eu-west-2.grafana.net/otlp/v1/metrics"},
		},
		"base endpoint already ending in /v1/metrics is used as is": {
			env:  Env{Endpoint: "https://otlp.example.com/otlp/v1/metrics"},
			want: Config{Endpoint: "https://otlp.example.com/otlp/v1/metrics"},
		},
		"base endpoint ending in /v1/metrics/ is used without the slash": {
			env:  Env{Endpoint: "https://otlp.example.com/v1/metrics/"},
			want: Config{Endpoint: "https://otlp.example.com/v1/metrics"},
		},
		"metrics endpoint is used as is and wins": {
			env:  Env{Endpoint: "https://a.example.com", MetricsEndpoint: "http://127.0.0.1:4318/custom"},
			want: Config{Endpoint: "http://127.0.0.1:4318/custom"},
		},
		"headers percent-decoded, metrics headers win": {
			env: Env{Endpoint: "https://x", Headers: "X-General=1",
				MetricsHeaders: "authorization=Bearer%20tok%2Cen , x-honeycomb-dataset=my%20app,"},
			want: Config{Endpoint: "https://x/v1/metrics", Headers: map[string]string{"Authorization": "Bearer tok,en", "X-Honeycomb-Dataset": "my app"}},
		},
		"base64 credentials keep their + / and =": {
			env:  Env{Endpoint: "https://x", Headers: "Authorization=Basic%20MTIz+NDU2/OmdsYytYeVo/a2V5PQ=="},
			want: Config{Endpoint: "https://x/v1/metrics", Headers: map[string]string{"Authorization": "Basic MTIz+NDU2/OmdsYytYeVo/a2V5PQ=="}},
		},
		"general settings": {
			env: Env{Endpoint: "https://x", Protocol: "HTTP/JSON", Compression: "none", Timeout: "2500", Temporality: "Delta"},
			want: Config{Endpoint: "https://x/v1/metrics", Protocol: HTTPJSON, Compression: CompressionNone,
				Timeout: 2500 * time.Millisecond, Temporality: Delta},
		},
		"metrics settings win": {
			env: Env{Endpoint: "https://x", Protocol: "grpc", MetricsProtocol: "http/protobuf", Compression: "zstd",
				MetricsCompression: "gzip", Timeout: "bad", MetricsTimeout: "3s", Temporality: "lowmemory"},
			want: Config{Endpoint: "https://x/v1/metrics", Protocol: HTTPProtobuf, Compression: CompressionGzip,
				Timeout: 3 * time.Second, Temporality: Delta},
		},
		"resource attributes and service name": {
			env: Env{Endpoint: "https://x", ResourceAttributes: "service.name=fromattrs,deployment.environment=prod%2Deu, host.name = a",
				ServiceName: "shop"},
			want: Config{Endpoint: "https://x/v1/metrics", Resource: map[string]string{"service.name": "shop", "deployment.environment": "prod-eu", "host.name": "a"}},
		},
		"service name from attributes": {
			env:  Env{Endpoint: "https://x", ResourceAttributes: "service.name=fromattrs"},
			want: Config{Endpoint: "https://x/v1/metrics", Resource: map[string]string{"service.name": "fromattrs"}},
		},
		"no endpoint": {
			env:     Env{},
			wantErr: []string{"OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: not set"},
		},
		"control character in the service name": {
			env:     Env{Endpoint: "https://x", ServiceName: "my\napp"},
			wantErr: []string{"OTEL_SERVICE_NAME: control character at byte 2"},
		},
		"grpc": {
			env:     Env{Endpoint: "https://x", Protocol: "grpc"},
			wantErr: []string{"OTEL_EXPORTER_OTLP_PROTOCOL=grpc: not supported"},
		},
		"every error at once, each naming its variable": {
			env: Env{Endpoint: "ftp://x", MetricsHeaders: "Authorization Bearer sekrit", Compression: "br",
				MetricsTimeout: "-5", Temporality: "sometimes", ResourceAttributes: "a=1,a=2"},
			wantErr: []string{
				`OTEL_EXPORTER_OTLP_ENDPOINT: scheme "ftp" is not http or https`,
				"OTEL_EXPORTER_OTLP_METRICS_HEADERS: invalid key=value list: entry 1: no '='",
				`OTEL_EXPORTER_OTLP_COMPRESSION="br": want gzip or none`,
				`OTEL_EXPORTER_OTLP_METRICS_TIMEOUT="-5": want milliseconds`,
				`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="sometimes"`,
				"OTEL_RESOURCE_ATTRIBUTES: invalid key=value list: entry 2 (a): key given twice",
			},
		},
		"credentials in the endpoint": {
			env:     Env{MetricsEndpoint: "https://user:pa55word@x/v1/metrics"},
			wantErr: []string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: credentials in the URL"},
		},
		"bad header name": {
			env:     Env{Endpoint: "https://x", Headers: "Bad Name: Bearer abcdef=1"},
			wantErr: []string{"OTEL_EXPORTER_OTLP_HEADERS: invalid key=value list: entry 1: header name is not a valid HTTP token"},
		},
		"protocol header": {
			env:     Env{Endpoint: "https://x", MetricsHeaders: "content-type=text/plain"},
			wantErr: []string{"OTEL_EXPORTER_OTLP_METRICS_HEADERS: header Content-Type is set by the protocol"},
		},
		"bad percent-encoding": {
			env:     Env{Endpoint: "https://x", Headers: "api-key=abc%zzsecret"},
			wantErr: []string{"OTEL_EXPORTER_OTLP_HEADERS: invalid key=value list: entry 1: value is not valid percent-encoding"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tc.env.Config()
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("no error, want %q", tc.wantErr)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				for _, secret := range []string{"sekrit", "pa55word", "abcdef", "zzsecret"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q quotes a secret", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if want.Protocol == "" {
				want.Protocol = HTTPProtobuf
			}
			if want.Compression == "" {
				want.Compression = CompressionGzip
			}
			if want.Resource == nil {
				want.Resource = map[string]string{"service.name": DefaultServiceName}
			}
			if want.Headers == nil {
				want.Headers = got.Headers
			}
			if got.Endpoint != want.Endpoint || got.Protocol != want.Protocol || got.Compression != want.Compression ||
				got.Timeout != want.Timeout || got.Temporality != want.Temporality ||
				!maps.Equal(got.Headers, want.Headers) || !maps.Equal(got.Resource, want.Resource) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			if _, err := New(got); err != nil {
				t.Errorf("New refuses what Env.Config gave: %v", err)
			}
		})
	}
	if (Env{}).Enabled() || !(Env{MetricsEndpoint: "https://x"}).Enabled() || !(Env{Endpoint: "https://x"}).Enabled() {
		t.Error("Enabled: want true exactly when an endpoint is set")
	}
}

func TestConfigCheck(t *testing.T) {
	tests := map[string]struct {
		cfg  Config
		want string
	}{
		"no endpoint":     {Config{}, "Endpoint is empty"},
		"reserved header": {Config{Endpoint: "http://x/v1/metrics", Headers: map[string]string{"Content-Type": "text/plain"}}, "header Content-Type is set by the protocol"},
		"source tag":      {Config{Endpoint: "http://x/v1/metrics", Tags: map[string]string{"source": "x"}}, `METRICS_TAGS: for OTLP: tag "source" is reserved`},
		"bad protocol":    {Config{Endpoint: "http://x/v1/metrics", Protocol: "grpc"}, `protocol "grpc"`},
		"negative bound":  {Config{Endpoint: "http://x/v1/metrics", MaxPointsPerRequest: -1}, "MaxPointsPerRequest -1 is negative"},
		"one bucket":      {Config{Endpoint: "http://x/v1/metrics", MaxBuckets: 1}, "MaxBuckets 1: want at least 2"},
		"bad utf-8 tag":   {Config{Endpoint: "http://x/v1/metrics", Tags: map[string]string{"a": "\xff"}}, "not UTF-8"},
		"query secret":    {Config{Endpoint: "ftp://x/v1/metrics?key=abc"}, `endpoint: scheme "ftp" is not http or https`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want ErrConfig and %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "key=abc") {
				t.Fatalf("error quotes the query: %v", err)
			}
		})
	}
}

func TestUCUM(t *testing.T) {
	tests := map[string]string{
		"": "", "ms": "ms", "s": "s", "sec": "s", "us": "us", "µs": "us", "ns": "ns",
		"B": "By", "bytes": "By", "kB": "KiBy", "MB": "MiBy", "GB": "GiBy", "%": "%",
		"pages": "{pages}", "req/s": "{req/s}", "a{b}": "{a_b_}", "x y": "{x_y}",
	}
	for in, want := range tests {
		if got := UCUM(in); got != want {
			t.Errorf("UCUM(%q) = %q, want %q", in, got, want)
		}
	}
}
