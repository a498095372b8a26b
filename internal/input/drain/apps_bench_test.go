package drain_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/appauth"
	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/drain"
)

// BenchmarkIngestApps measures ingest per line, from ServeHTTP through
// parsing into the real aggregator, in single-app mode (DRAIN_USER and
// DRAIN_PASSWORD) and in multi-app mode (DRAIN_SECRET, two secrets, bodies
// of two apps in turn): the per-app cost is one HMAC per request, the app
// stamped on each measurement, and the app in the series key. Compare the
// ns/line of the two in one run.
func BenchmarkIngestApps(b *testing.B) {
	keys, err := appauth.New([]string{"0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"})
	if err != nil {
		b.Fatal(err)
	}
	apps := []string{"billing", "shop"}
	for _, mode := range []string{"single-app", "multi-app"} {
		b.Run(mode, func(b *testing.B) {
			now := time.Date(2024, 5, 1, 12, 0, 30, 0, time.UTC)
			agg, err := aggregate.New(aggregate.Config{Resolution: time.Minute, Now: func() time.Time { return now }})
			if err != nil {
				b.Fatal(err)
			}
			p, err := input.NewProcessor(agg, input.Config{Now: func() time.Time { return now }})
			if err != nil {
				b.Fatal(err)
			}
			cfg := drain.Config{User: user, Password: pass, DedupSize: -1}
			if mode == "multi-app" {
				cfg = drain.Config{Apps: keys, DedupSize: -1}
			}
			h, err := drain.New(p, cfg)
			if err != nil {
				b.Fatal(err)
			}
			body := benchBody()
			reqs := make([]*http.Request, len(apps))
			for i, app := range apps {
				req, _ := http.NewRequest(http.MethodPost, "http://drain"+drain.LogsPath, nil)
				if mode == "multi-app" {
					req.SetBasicAuth(app, keys.Token(app))
				} else {
					req.SetBasicAuth(user, pass)
				}
				req.Header.Set("Content-Type", "application/logplex-1")
				reqs[i] = req
			}
			w := &statusWriter{h: http.Header{}}
			br := bytes.NewReader(body)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				serveBench(b, h, w, reqs[i%len(reqs)], br, body)
			}
			if err := h.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			lines := p.Stats().Lines
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(lines), "ns/line")
			if want := uint64(b.N) * 100; lines != want {
				b.Fatalf("parsed %d lines, want %d", lines, want)
			}
			st := agg.Stats()
			if st.Added == 0 || st.OpenSeries == 0 {
				b.Fatalf("aggregator stats %+v", st)
			}
			b.ReportMetric(float64(st.OpenSeries), "series")
		})
	}
}
