package otlpout

import (
	"fmt"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// benchBucket is the input of the Librato encoder's BenchmarkEncode*10k:
// 10,000 series named router.service.NNNNN on web.1..web.10, a third each
// counters, samples and measures; the measures carry a real State of 17
// values (3 to 402.75 ms) so that their histograms are real.
func benchBucket(b testing.TB, n int, start time.Time) *aggregate.Bucket {
	var ms []metric.Measurement
	at := start.Add(time.Second)
	for i := range n {
		name, src := fmt.Sprintf("router.service.%05d", i), fmt.Sprintf("web.%d", i%10+1)
		switch i % 3 {
		case 0:
			ms = append(ms, m(metric.Counter, name, src, at, 17, ""))
		case 1:
			ms = append(ms, m(metric.Sample, name, src, at, 71.25, ""))
		case 2:
			for j := range 17 {
				ms = append(ms, m(metric.Measure, name, src, at.Add(time.Duration(j)*time.Millisecond), 3+float64(j*j)*1.4, "ms"))
			}
		}
	}
	agg, err := aggregate.New(aggregate.Config{Resolution: time.Minute, MaxAge: 24 * time.Hour, Now: func() time.Time { return start }})
	if err != nil {
		b.Fatal(err)
	}
	agg.Add(ms)
	bs := agg.FlushAll()
	if len(bs) != 1 || len(bs[0].Series) != n {
		b.Fatalf("bench bucket: %d buckets", len(bs))
	}
	return bs[0]
}

// BenchmarkEncode10k encodes a bucket of 10,000 input series into request
// bodies of at most DefaultMaxPointsPerRequest points, in the steady state
// of cumulative temporality (every series already tracked). body-bytes is
// what is sent, raw-bytes the same bodies before gzip.
func BenchmarkEncode10k(b *testing.B) {
	for _, tc := range []struct {
		name        string
		protocol    Protocol
		compression string
	}{
		{"protobuf+gzip", HTTPProtobuf, CompressionGzip},
		{"protobuf", HTTPProtobuf, CompressionNone},
		{"json+gzip", HTTPJSON, CompressionGzip},
		{"json", HTTPJSON, CompressionNone},
	} {
		b.Run(tc.name, func(b *testing.B) {
			bk := benchBucket(b, 10_000, t0)
			cfg, err := Config{Endpoint: "http://x/v1/metrics", Protocol: tc.protocol, Compression: tc.compression,
				Prefix: "us-east.prod.app", Tags: map[string]string{"app": "myapp", "region": "us-east"}}.check()
			if err != nil {
				b.Fatal(err)
			}
			e := newEncoder(cfg)
			var size, points int
			encode := func(i int) {
				size, points = 0, 0
				bk.Start = t0.Add(time.Duration(i) * time.Minute)
				if err := e.encode(bk, func(body []byte, n int) { size += len(body); points += n }); err != nil {
					b.Fatal(err)
				}
			}
			encode(0)
			if points != 10_000 {
				b.Fatalf("encoded %d points", points)
			}
			i := 1
			b.ReportAllocs()
			for b.Loop() {
				encode(i)
				i++
			}
			b.ReportMetric(float64(size), "body-bytes/op")
			if tc.compression == CompressionGzip {
				e.gzip = false
				encode(i)
				b.ReportMetric(float64(size), "raw-bytes/op")
			}
		})
	}
}
