package aggregate

import (
	"strconv"
	"testing"

	"github.com/dynometrics/dynometrics/internal/metric"
)

// BenchmarkAddNewSeries measures Add per measurement that opens a series
// (the path the series bound guards), 64 per Add call, over 8 sources; the
// open buckets are flushed (untimed) every 48,000 series.
func BenchmarkAddNewSeries(b *testing.B) {
	const perBucket = 48_000
	ms := make([]metric.Measurement, perBucket)
	for i := range ms {
		ms[i] = cnt("app.metric."+strconv.Itoa(i), "web."+strconv.Itoa(1+i%8), 1, float64(i%60))
	}
	a := newTest(b, Config{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 64 {
		j := i % perBucket
		if j == 0 && i > 0 {
			b.StopTimer()
			a.FlushAll()
			a = newTest(b, Config{})
			b.StartTimer()
		}
		a.Add(ms[j:min(j+64, perBucket)])
	}
}
