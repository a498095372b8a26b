package main

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/librato/libratotest"
	"github.com/dynometrics/dynometrics/internal/otlpout/otlptest"
	"github.com/dynometrics/dynometrics/internal/outlet"
	metrics "github.com/rcrowley/go-metrics"
)

// otlpWant is one series the recorded drain must produce per bucket, in
// OTLP terms.
type otlpWant struct {
	name, source, unit, typ string  // typ: sum, gauge, exphist
	value                   float64 // sum and gauge
	values                  []float64
}

// drainOTLPWants is what testdata/drain.txt gives one bucket: the same
// series as drainWants (the Librato oracle), with each kind's OTLP type and
// UCUM unit, and the raw values of the measures.
func drainOTLPWants() []otlpWant {
	counters := map[string]bool{"router.status.2xx": true, "router.status.5xx": true, "router.error.H12": true,
		"router.error.H14": true, "logplex.dropped": true, "jobs.enqueued": true}
	ucum := map[string]string{"": "", "ms": "ms", "bytes": "By", "MB": "MiBy", "pages": "{pages}"}
	values := map[string][]float64{
		"router.connect/web.1": {1, 0}, "router.service/web.1": {12, 20}, "router.bytes/web.1": {512, 100},
		"router.connect/web.2": {0}, "router.service/web.2": {30000}, "router.bytes/web.2": {0},
		"db.latency/web.2": {4, 10, 7}, "memory_rss/web.2": {30.5},
	}
	var out []otlpWant
	for _, w := range drainWants() {
		switch {
		case w.summary:
			vs := values[w.name+"/"+w.source]
			if len(vs) != int(w.count) {
				panic("oracle: no values for " + w.name + "/" + w.source)
			}
			out = append(out, otlpWant{name: w.name, source: w.source, unit: ucum[w.unit], typ: "exphist", values: vs})
		case strings.HasSuffix(w.name, ".median") || strings.HasSuffix(w.name, ".perc95") || strings.HasSuffix(w.name, ".perc99"):
			// Librato's percentile gauges: part of the histogram here.
		case counters[w.name]:
			out = append(out, otlpWant{name: w.name, source: w.source, unit: ucum[w.unit], typ: "sum", value: w.value})
		default:
			out = append(out, otlpWant{name: w.name, source: w.source, unit: ucum[w.unit], typ: "gauge", value: w.value})
		}
	}
	return out
}

// TestEndToEndOTLP runs the built worker binary with the standard OTEL_*
// variables, posts the recorded drain for two consecutive minutes (with a
// grace that holds both buckets open), stops it with SIGTERM, which flushes
// and delivers both, and checks every data point a local OTLP receiver decoded
// with the Collector's pdata: type, temporality, value, start and end time,
// unit, attributes, resource and histogram buckets.
func TestEndToEndOTLP(t *testing.T) {
	tests := map[string]struct {
		env   []string
		delta bool
		ct    string
	}{
		"cumulative, protobuf, gzip": {
			env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT={URL}"},
			ct:  "application/x-protobuf",
		},
		"delta, JSON, no compression": {
			env: []string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT={URL}/v1/metrics", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=http/json",
				"OTEL_EXPORTER_OTLP_COMPRESSION=none", "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta"},
			delta: true,
			ct:    "application/json",
		},
	}
	bin := buildBinary(t, ".")
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			const token = "otlp-e2e-secret-token"
			r := otlptest.New(t, otlptest.Options{Headers: map[string]string{"Authorization": "Bearer " + token}})
			env := []string{"METRICS_PREFIX=" + testPrefix, "METRICS_TAGS=region:us-east,env:prod", "METRICS_GRACE=30m",
				"OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20" + token, "OTEL_SERVICE_NAME=shop",
				"OTEL_RESOURCE_ATTRIBUTES=deployment.environment=prod,service.name=ignored"}
			for _, e := range tc.env {
				env = append(env, strings.ReplaceAll(e, "{URL}", r.URL))
			}
			p := startBinary(t, bin, env...)
			base := strings.TrimSuffix(p.url, "/logs")

			wants := drainOTLPWants()
			now := time.Now().UTC().Truncate(time.Minute)
			starts := []time.Time{now.Add(-3 * time.Minute), now.Add(-2 * time.Minute)}
			for i, s := range starts {
				postDrain(t, base+"/logs", fmt.Sprintf("otlp-%d", i), frame(drainMessages(t, s)...))
			}
			time.Sleep(200 * time.Millisecond) // let the drain queue parse both bodies
			if n := len(r.Points()); n != 0 {
				t.Fatalf("%d points sent before the buckets were due", n)
			}
			p.term(t)
			if strings.Contains(p.stderr.String(), token) || strings.Contains(p.stderr.String(), testPass) {
				t.Errorf("worker logs contain a secret:\n%s", p.stderr.String())
			}
			if errs := r.Errors(); len(errs) > 0 {
				t.Fatalf("receiver refused requests: %q", errs)
			}
			if n := len(r.Points()); n != 2*len(wants) || len(wants) != 28 {
				t.Errorf("%d points for %d series in 2 buckets", n, len(wants))
			}
			got := map[string]otlptest.Point{}
			for _, p := range r.Points() {
				k := fmt.Sprintf("%s@%d", p.Key(), p.Time.Unix())
				if _, dup := got[k]; dup {
					t.Errorf("received twice: %s", k)
				}
				got[k] = p
				if p.ContentType != tc.ct || p.Resource["service.name"] != "shop" || p.Resource["deployment.environment"] != "prod" || len(p.Resource) != 2 {
					t.Errorf("%s: content type %s, resource %v", k, p.ContentType, p.Resource)
				}
			}
			temporality := map[bool]string{false: "cumulative", true: "delta"}[tc.delta]
			for i, s := range starts {
				end := s.Add(time.Minute)
				for _, w := range wants {
					attrs := "{env=prod,region=us-east"
					if w.source != "" {
						attrs += ",source=" + w.source
					}
					k := fmt.Sprintf("%s.%s%s}@%d", testPrefix, w.name, attrs, end.Unix())
					p, ok := got[k]
					if !ok {
						t.Errorf("missing %s", k)
						continue
					}
					delete(got, k)
					start, n := s, 1.0 // start time, and how many buckets a cumulative point holds
					if !tc.delta && w.typ != "gauge" {
						start, n = starts[0], float64(i+1)
					}
					if p.Type != w.typ || p.Unit != w.unit || !p.Time.Equal(end) || !p.Start.Equal(start) {
						t.Errorf("%s: %s unit %q start %v time %v; want %s %q %v %v", k, p.Type, p.Unit, p.Start, p.Time, w.typ, w.unit, start, end)
					}
					if w.typ != "gauge" && p.Temporality != temporality {
						t.Errorf("%s: temporality %s, want %s", k, p.Temporality, temporality)
					}
					switch w.typ {
					case "sum":
						if !p.Monotonic || !near(p.Value, n*w.value) {
							t.Errorf("%s: value %v monotonic %v, want %v", k, p.Value, p.Monotonic, n*w.value)
						}
					case "gauge":
						if !near(p.Value, w.value) {
							t.Errorf("%s: value %v, want %v", k, p.Value, w.value)
						}
					case "exphist":
						vs := w.values
						if n == 2 {
							vs = append(slices.Clone(vs), vs...)
						}
						checkOTLPHistogram(t, k, p, vs)
					}
				}
			}
			for k := range got {
				t.Errorf("unexpected point %s", k)
			}
		})
	}
}

// checkOTLPHistogram checks count, sum, min and max against the values,
// and that the nearest-rank value of every percentile lies in the bucket
// where its rank lands.
func checkOTLPHistogram(t *testing.T, k string, p otlptest.Point, values []float64) {
	t.Helper()
	sorted := slices.Sorted(slices.Values(values))
	var sum float64
	for _, v := range sorted {
		sum += v
	}
	if p.Count != uint64(len(sorted)) || !near(p.Sum, sum) || p.Min != sorted[0] || p.Max != sorted[len(sorted)-1] {
		t.Errorf("%s: count %d sum %v min %v max %v; want %d %v %v %v", k, p.Count, p.Sum, p.Min, p.Max, len(sorted), sum, sorted[0], sorted[len(sorted)-1])
		return
	}
	bound := func(i int) float64 { return math.Pow(2, float64(i)*math.Pow(2, -float64(p.Scale))) }
	for q := 1; q <= 100; q++ {
		r := uint64(max((q*len(sorted)+99)/100-1, 0))
		v, seen, ok := sorted[r], p.Zero, false
		switch {
		case r < seen:
			ok = v == 0
		default:
			for i, c := range p.Pos {
				seen += c
				if r < seen {
					idx := int(p.PosOffset) + i
					ok = v > bound(idx)*(1-1e-12) && v <= bound(idx+1)*(1+1e-12)
					break
				}
			}
		}
		if !ok {
			t.Errorf("%s: p%d = %v is not in the bucket its rank %d lands in (scale %d, zero %d, offset %d, %v)", k, q, v, r, p.Scale, p.Zero, p.PosOffset, p.Pos)
			return
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	addr := freeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOTLPConfigErrors: the OTEL_* variables are checked when an endpoint
// is set; each error names its variable and quotes no header value.
func TestOTLPConfigErrors(t *testing.T) {
	tests := map[string]struct {
		env  map[string]string
		want string // "" means valid
	}{
		"not configured":   {map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, ""},
		"valid":            {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com", "OTEL_EXPORTER_OTLP_HEADERS": "api-key=secret-token"}, ""},
		"grpc":             {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://x", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc: not supported"},
		"bad header":       {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://x", "OTEL_EXPORTER_OTLP_HEADERS": "Authorization: Bearer secret-token"}, "OTEL_EXPORTER_OTLP_HEADERS: invalid key=value list: entry 1"},
		"bad temporality":  {map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "https://x/v1/metrics", "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "cumulativ"}, `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="cumulativ"`},
		"bad timeout":      {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://x", "OTEL_EXPORTER_OTLP_TIMEOUT": "ten"}, `OTEL_EXPORTER_OTLP_TIMEOUT="ten"`},
		"endpoint scheme":  {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "otlp.example.com:4317"}, `OTEL_EXPORTER_OTLP_ENDPOINT="otlp.example.com:4317": no http:// or https:// in front`},
		"credentials":      {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://u:secret-token@x"}, "credentials in the URL"},
		"bad resource":     {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://x", "OTEL_RESOURCE_ATTRIBUTES": "novalue"}, "OTEL_RESOURCE_ATTRIBUTES: invalid key=value list: entry 1: no '='"},
		"bad compression":  {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://x", "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "br"}, `OTEL_EXPORTER_OTLP_METRICS_COMPRESSION="br"`},
		"metrics wins":     {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://x", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/json"}, ""},
		"source tag taken": {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://x", "METRICS_TAGS": "source:x"}, "reserved for the dyno"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := loadConfig()
			if err == nil {
				_, err = newWorker(cfg, options{stdin: strings.NewReader(""), stdout: io.Discard})
			}
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

// TestOTLPBesideLibrato runs the worker in-process with the OTLP and the
// Librato outlets at once, minute after minute on a test clock: the OTLP
// receiver fails for a while (503 three times, then 429 with a 2 s
// Retry-After), Librato is not held back by it, and both end with every
// series of both minutes, the OTLP sums cumulative across the two flushes.
func TestOTLPBesideLibrato(t *testing.T) {
	r := otlptest.New(t, otlptest.Options{Headers: map[string]string{"X-Api-Key": "k-otlp-secret"}})
	r.Inject(3, otlptest.Fault{Status: http.StatusServiceUnavailable})
	r.Inject(1, otlptest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "2"})
	fake := libratotest.New(t, libratotest.Options{User: testLUser, Token: testLToken})
	cfg := testConfig(fake.URL)
	cfg.OTLP.Endpoint, cfg.OTLP.Headers, cfg.OTLP.ServiceName = r.URL, "X-Api-Key=k-otlp-secret", "shop"
	now := time.Now().UTC().Truncate(time.Minute)
	starts := []time.Time{now.Add(-3 * time.Minute), now.Add(-2 * time.Minute)}
	clock := &testClock{t: starts[0].Add(30 * time.Second)}
	url, wk, stop := runWorker(t, cfg, outlet.QueueConfig{MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}, clock)
	if len(wk.outlets) != 2 || wk.outlets[1].name != "otlp" {
		t.Fatalf("outlets %v, want librato and otlp", wk.outlets)
	}
	for i, s := range starts {
		clock.Set(s.Add(30 * time.Second)) // the previous minute is now due
		postDrain(t, url, fmt.Sprintf("beside-%d", i), frame(drainMessages(t, s)...))
		waitFor(t, "the body to be parsed", 5*time.Second, func() bool { return wk.drain.Stats().Processed == uint64(i+1) })
	}
	clock.Set(now)
	wants := drainOTLPWants()
	waitFor(t, "Librato to get both minutes", 10*time.Second, func() bool { return len(fake.Measurements()) == 2*len(drainWants()) })
	if n := len(r.Points()); n == 2*len(wants) {
		t.Errorf("OTLP had every point (%d) before Librato finished: its 2 s Retry-After was not honoured", n)
	}
	waitFor(t, "OTLP to get both minutes", 15*time.Second, func() bool { return len(r.Points()) == 2*len(wants) })
	// The receiver holds the points before the outlet reads its answer: wait
	// for the outlet to count the second batch sent.
	waitFor(t, "the outlet to count both batches", 5*time.Second, func() bool {
		c, ok := wk.reg.Get("worker.outlet.otlp.batches_sent").(metrics.Counter)
		return ok && c.Count() >= 2
	})
	// The self-metrics read the outlet's counters.
	for name, want := range map[string]int64{
		"worker.outlet.otlp.batches_sent": 2, "worker.outlet.otlp.send_failures": 4,
		"worker.outlet.otlp.batches_dropped": 0, "worker.outlet.otlp.partial_rejected_points": 0,
		"worker.outlet.otlp.rejected_requests": 0,
	} {
		c, ok := wk.reg.Get(name).(metrics.Counter)
		if !ok || c.Count() != want {
			t.Errorf("self-metric %s = %v, want %d", name, wk.reg.Get(name), want)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	if c := r.Counts(); c.Faults != 4 || c.Invalid != 0 {
		t.Errorf("receiver counts %+v: want the 4 faults used, nothing invalid", c)
	}
	got := map[string]otlptest.Point{}
	for _, p := range r.Points() {
		got[fmt.Sprintf("%s@%d", p.Key(), p.Time.Unix())] = p
	}
	for i, s := range starts {
		for _, w := range wants {
			if w.typ != "sum" {
				continue
			}
			attrs := "{"
			if w.source != "" {
				attrs += "source=" + w.source
			}
			k := fmt.Sprintf("%s.%s%s}@%d", testPrefix, w.name, attrs, s.Add(time.Minute).Unix())
			if p := got[k]; !near(p.Value, float64(i+1)*w.value) || !p.Start.Equal(starts[0]) || p.Temporality != "cumulative" {
				t.Errorf("%s: value %v start %v %s; want %v from %v, cumulative", k, p.Value, p.Start, p.Temporality, float64(i+1)*w.value, starts[0])
			}
		}
	}
	for _, s := range starts {
		var in []libratotest.Measurement
		for _, m := range fake.Measurements() {
			if m.Time == s.Unix() {
				in = append(in, m)
			}
		}
		checkAccepted(t, in, drainWants(), s)
	}
}
