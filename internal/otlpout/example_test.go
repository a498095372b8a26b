package otlpout_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/otlpout"
	"github.com/dynometrics/dynometrics/internal/otlpout/otlptest"
)

// ExampleEnv reads a vendor's copy-paste snippet.
func ExampleEnv() {
	cfg, err := otlpout.Env{
		Endpoint:    "https://otel.collector.na-01.cloud.solarwinds.com",
		Headers:     "authorization=Bearer%20MY-INGESTION-TOKEN",
		Temporality: "delta",
		ServiceName: "shop",
	}.Config()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Endpoint, cfg.Protocol, cfg.Compression, cfg.Temporality, cfg.Resource)
	fmt.Println(len(cfg.Headers["Authorization"]), "characters of Authorization")
	// Output:
	// https://otel.collector.na-01.cloud.solarwinds.com/v1/metrics http/protobuf gzip delta map[service.name:shop]
	// 25 characters of Authorization
}

// ExampleUCUM shows how l2met units are named in OTLP.
func ExampleUCUM() {
	for _, u := range []string{"ms", "sec", "bytes", "MB", "%", "pages"} {
		fmt.Printf("%s→%s ", u, otlpout.UCUM(u))
	}
	// Output: ms→ms sec→s bytes→By MB→MiBy %→% pages→{pages}
}

// ExampleNew sends one bucket to a local receiver.
func ExampleNew() {
	r, stop := otlptest.Start(otlptest.Options{})
	defer stop()
	start := time.Now().UTC().Truncate(time.Minute).Add(-2 * time.Minute)
	o, err := otlpout.New(otlpout.Config{
		Endpoint: r.URL + "/v1/metrics",
		Prefix:   "shop",
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	agg, _ := aggregate.New(aggregate.Config{})
	agg.Add([]metric.Measurement{{Name: "requests", Source: "web.1", Time: start.Add(time.Second), Kind: metric.Counter, Value: 3}})
	for _, b := range agg.FlushAll() {
		o.Write(b)
	}
	if err := o.Close(context.Background()); err != nil {
		fmt.Println(err)
	}
	for _, p := range r.Points() {
		fmt.Println(p.Key(), p.Type, p.Temporality, p.Value, p.Time.Sub(p.Start))
	}
	// Output: shop.requests{source=web.1} sum cumulative 3 1m0s
}
