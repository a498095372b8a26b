package otelsdk_test

import (
	"context"
	"encoding/base64"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/input/otlp"
	"github.com/dynometrics/dynometrics/internal/librato"
	"github.com/dynometrics/dynometrics/internal/librato/libratotest"
	"github.com/dynometrics/dynometrics/internal/outlet"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/log"
	otelmetric "go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

const (
	drainUser, drainPass    = "drain", "Dr41n-pass"
	libratoUser, libratoTok = "ops@example.com", "l1br4t0"
)

// TestSDKExporters sends logs and metrics with the real OpenTelemetry Go SDK
// exporters (OTLP/HTTP protobuf, gzip, Basic auth header) from two Fir dynos
// of one process type, aggregates them and delivers them to the fake
// Librato, with Fir dyno names reduced to the process type.
func TestSDKExporters(t *testing.T) {
	ctx := t.Context()
	lib := libratotest.New(t, libratotest.Options{User: libratoUser, Token: libratoTok})
	agg, err := aggregate.New(aggregate.Config{Resolution: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := otlp.New(otlp.Config{Sink: agg, User: drainUser, Password: drainPass,
		SourceAttributes: []string{"heroku.dyno.name"}, DynoNames: otlp.DynoType})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	rcv.Register(mux)
	srv := httptest.NewServer(mux)
	auth := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(drainUser+":"+drainPass))}

	dynoRes := func(name string) *resource.Resource {
		return resource.NewSchemaless(attribute.String("service.name", "my-app"), attribute.String("heroku.dyno.name", name))
	}
	var shutdowns []func(context.Context) error
	emit := func(dyno string, bodies ...string) {
		exp, err := otlploghttp.New(ctx, otlploghttp.WithEndpointURL(srv.URL+otlp.LogsPath),
			otlploghttp.WithCompression(otlploghttp.GzipCompression), otlploghttp.WithHeaders(auth))
		if err != nil {
			t.Fatal(err)
		}
		lp := sdklog.NewLoggerProvider(sdklog.WithResource(dynoRes(dyno)), sdklog.WithProcessor(sdklog.NewBatchProcessor(exp)))
		shutdowns = append(shutdowns, lp.Shutdown)
		l := lp.Logger("app")
		for _, b := range bodies {
			var rec log.Record
			rec.SetTimestamp(time.Now())
			rec.SetBody(attribute.StringValue(b))
			l.Emit(ctx, rec)
		}
		if err := lp.ForceFlush(ctx); err != nil {
			t.Fatalf("log export: %v", err)
		}
	}
	emit("web-5d8f7c9b4-x2k9p", "count#req=1 measure#db.latency=4ms",
		`at=info method=GET path="/" host=my-app.example.com request_id=69 fwd=138.68.186.89 dyno=web-5d8f7c9b4-x2k9p connect=0ms service=12ms status=200 bytes=512 protocol=http2.0 tls=true tls_version=tls1.3`)
	emit("web-5d8f7c9b4-a1b2c", "count#req=2 measure#db.latency=8ms", "plain text, no metric")

	mexp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(srv.URL+otlp.MetricsPath),
		otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression), otlpmetrichttp.WithHeaders(auth))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(dynoRes("worker-7f6e5d4c3-ab12c")),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, sdkmetric.WithInterval(time.Hour))),
		sdkmetric.WithView(sdkmetric.NewView(sdkmetric.Instrument{Name: "queue.wait"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}})))
	shutdowns = append(shutdowns, mp.Shutdown)
	m := mp.Meter("worker")
	jobs, _ := m.Int64Counter("jobs.done")
	depth, _ := m.Float64Gauge("queue.depth")
	pool, _ := m.Int64UpDownCounter("db.pool")
	dur, _ := m.Float64Histogram("http.duration", otelmetric.WithUnit("ms"))
	wait, _ := m.Float64Histogram("queue.wait", otelmetric.WithUnit("s"))
	mem, _ := m.Int64Gauge("memory.rss", otelmetric.WithUnit("By"))

	jobs.Add(ctx, 5)
	depth.Record(ctx, 3)
	pool.Add(ctx, 4)
	mem.Record(ctx, 1<<20)
	for _, v := range []float64{3, 30, 300} {
		dur.Record(ctx, v)
	}
	for _, v := range []float64{0.5, 1.5} {
		wait.Record(ctx, v)
	}
	if err := mp.ForceFlush(ctx); err != nil { // cumulative: the series started after the receiver, all of it counts
		t.Fatalf("metric export: %v", err)
	}
	jobs.Add(ctx, 3)
	depth.Record(ctx, 7)
	dur.Record(ctx, 40)
	wait.Record(ctx, 6)
	if err := mp.ForceFlush(ctx); err != nil { // cumulative: the difference with the first export
		t.Fatalf("metric export: %v", err)
	}

	for _, s := range shutdowns {
		if err := s(ctx); err != nil {
			t.Fatal(err)
		}
	}
	srv.Close()
	if err := rcv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	o, err := librato.New(librato.Config{User: libratoUser, Token: libratoTok, URL: lib.URL,
		Queue: outlet.QueueConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range agg.FlushAll() {
		o.Write(b)
	}
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if errs := lib.Errors(); len(errs) > 0 {
		t.Fatalf("Librato refused: %v", errs)
	}

	value := func(name, source string, want float64) { // a count: added up over buckets
		t.Helper()
		if got, n := total(lib, name, source); n == 0 || got.Value != want {
			t.Errorf("%s/%s = %v (%d measurements), want %v", name, source, got.Value, n, want)
		}
	}
	last := func(name, source string, want float64) { // a sample: the latest bucket's
		t.Helper()
		var got libratotest.Measurement
		for _, m := range lib.Measurements() {
			if m.Name == name && m.Source == source && m.Time >= got.Time {
				got = m
			}
		}
		if got.Name == "" || got.Value != want {
			t.Errorf("%s/%s = %+v, want %v", name, source, got, want)
		}
	}
	summary := func(name, source string, count int64, sum, lo, hi float64) {
		t.Helper()
		got, n := total(lib, name, source)
		if n == 0 || got.Count != count || math.Abs(got.Sum-sum) > 1e-9 || got.Min != lo || got.Max != hi {
			t.Errorf("%s/%s = count %d sum %v min %v max %v, want %d %v %v %v", name, source, got.Count, got.Sum, got.Min, got.Max, count, sum, lo, hi)
		}
	}
	value("req", "web", 3)
	summary("db.latency", "web", 2, 12, 4, 8)
	value("router.status.2xx", "web", 1)
	value("router.protocol.http2.0", "web", 1)
	summary("router.service", "web", 1, 12, 12, 12)
	value("jobs.done", "worker", 8)
	last("queue.depth", "worker", 7)
	last("db.pool", "worker", 4)
	last("memory.rss", "worker", 1<<20)
	// http.duration: 3, 30, 300 then 40. The second point is the difference
	// of two cumulative points: its min and max are the edges of its bucket
	// (25, 50], within the series' 3 and 300.
	summary("http.duration", "worker", 4, 373, 3, 300)
	summary("queue.wait", "worker", 3, 8, 0.5, 6)
	if mm, ok := lib.Find("http.duration.median", "worker"); ok && !split(lib, "http.duration", "worker") {
		// Representatives: 3 → (0,5] = 2.5 (clamped to min 3), 30 → (25,50]
		// = 37.5, 40 → 37.5, 300 → (250,500] = 375 clamped to 300: the
		// nearest-rank median of four is the second, 37.5.
		if mm.Value != 37.5 {
			t.Errorf("http.duration.median %v, want 37.5", mm.Value)
		}
	}
	if m, ok := lib.Find("jobs.done", "worker-7f6e5d4c3-ab12c"); ok {
		t.Errorf("Fir dyno name kept: %+v", m)
	}
	st := rcv.Stats()
	if st.LogRecords != 4 || st.Rejected != 0 || st.Unauthorized != 0 || st.Input.Lines != 4 || st.DataPoints != 18 {
		t.Errorf("receiver stats %+v", st)
	}
}

// total adds up the measurements of a series over every bucket it was sent in.
func total(lib *libratotest.Server, name, source string) (libratotest.Measurement, int) {
	var out libratotest.Measurement
	n := 0
	for _, m := range lib.Measurements() {
		if m.Name != name || m.Source != source {
			continue
		}
		if n == 0 {
			out.Min, out.Max = m.Min, m.Max
		}
		n++
		out.Value += m.Value
		out.Count += m.Count
		out.Sum += m.Sum
		out.Min, out.Max = min(out.Min, m.Min), max(out.Max, m.Max)
	}
	return out, n
}

// split says whether a series was sent in more than one bucket (the test ran
// across an hour boundary), where percentiles are per bucket.
func split(lib *libratotest.Server, name, source string) bool {
	_, n := total(lib, name, source)
	return n > 1
}
