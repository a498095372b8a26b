package otlpout

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/otlpout/otlptest"
	"github.com/dynometrics/dynometrics/internal/outlet"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// twoMinutes is the input of the mapping test: two consecutive buckets.
func twoMinutes() ([]metric.Measurement, []float64) {
	a, b := t0.Add(5*time.Second), t0.Add(time.Minute+5*time.Second)
	ms := []metric.Measurement{
		m(metric.Counter, "requests", "web.1", a, 3, ""),
		m(metric.Counter, "requests", "web.1", a, 4, ""),
		m(metric.Sample, "memory_rss", "web.1", a, 20.5, "MB"),
		m(metric.Sample, "memory_rss", "web.1", a.Add(time.Second), 21.22, "MB"),
		m(metric.Counter, "logplex.dropped", "", a, 15, ""),
		m(metric.Sample, "db_size", "DATABASE", a, 8945836, "bytes"),
		m(metric.Sample, "pgpgin", "web.1", a, 348836, "pages"),
		m(metric.Counter, "requests", "web.1", b, 3, ""),
	}
	ms = append(ms, measures("db.latency", "web.1", a, "ms", 4, 10, 7)...)
	ms = append(ms, measures("temp", "web.2", a, "", -5, 0, 0, 2.5)...)
	ms = append(ms, measures("db.latency", "web.1", b, "ms", 20)...)
	r := rand.New(rand.NewPCG(1, 2))
	big := make([]float64, 2500) // beyond ExactLimit: a sketch
	for i := range big {
		big[i] = math.Exp(r.NormFloat64()*0.8 + 4)
	}
	ms = append(ms, measures("router.service", "web.1", a, "ms", big...)...)
	return ms, big
}

// TestMapping sends two buckets through a real HTTP round trip, for each
// protocol, compression and temporality, and checks every data point the
// Collector's pdata decoded: values, types, temporality, start and end
// times, attributes, units, resource and histogram buckets.
func TestMapping(t *testing.T) {
	ms, big := twoMinutes()
	buckets := flush(t, ms)
	if len(buckets) != 2 {
		t.Fatalf("%d buckets, want 2", len(buckets))
	}
	end1, end2 := t0.Add(time.Minute), t0.Add(2*time.Minute)
	for _, proto := range []Protocol{HTTPProtobuf, HTTPJSON} {
		for _, comp := range []string{CompressionGzip, CompressionNone} {
			for _, temp := range []Temporality{Cumulative, Delta} {
				t.Run(fmt.Sprintf("%s/%s/%s", proto, comp, temp), func(t *testing.T) {
					r := otlptest.New(t, otlptest.Options{Headers: map[string]string{"Authorization": "Bearer s3cret-token"}})
					o, _ := newOutlet(t, r, Config{
						Protocol: proto, Compression: comp, Temporality: temp,
						Headers: map[string]string{"Authorization": "Bearer s3cret-token"},
						Prefix:  "us-east.prod.app", Tags: map[string]string{"env": "prod", "region": "us-east"},
						Resource: map[string]string{"service.name": "shop", "deployment.environment": "prod"},
					})
					for _, b := range buckets {
						o.Write(b)
					}
					closeOutlet(t, o)
					if errs := r.Errors(); len(errs) > 0 {
						t.Fatalf("receiver refused requests: %q", errs)
					}
					got := byKey(t, r.Points())
					wantType := map[bool]string{true: "cumulative", false: "delta"}[temp == Cumulative]
					attrs := func(source string) string {
						if source == "" {
							return "{env=prod,region=us-east}"
						}
						return "{env=prod,region=us-east,source=" + source + "}"
					}
					pt := func(name, source string, end time.Time) otlptest.Point {
						t.Helper()
						k := "us-east.prod.app." + name + attrs(source) + "@" + end.Format("15:04:05")
						p, ok := got[k]
						if !ok {
							t.Fatalf("no point %s; got %v", k, keys(got))
						}
						delete(got, k)
						if p.Resource["service.name"] != "shop" || p.Resource["deployment.environment"] != "prod" || len(p.Resource) != 2 {
							t.Errorf("%s: resource %v", k, p.Resource)
						}
						if p.Scope != scopeName {
							t.Errorf("%s: scope %q", k, p.Scope)
						}
						wantCT := map[Protocol]string{HTTPProtobuf: "application/x-protobuf", HTTPJSON: "application/json"}[proto]
						wantEnc := map[string]string{CompressionGzip: "gzip", CompressionNone: ""}[comp]
						if p.ContentType != wantCT || p.Encoding != wantEnc {
							t.Errorf("%s: sent as %s/%q, want %s/%q", k, p.ContentType, p.Encoding, wantCT, wantEnc)
						}
						return p
					}
					sum := func(name, source string, end time.Time, start time.Time, v float64) {
						t.Helper()
						p := pt(name, source, end)
						if p.Type != "sum" || !p.Monotonic || p.Temporality != wantType || p.Unit != "" {
							t.Errorf("%s: %s monotonic=%v %s unit %q; want a monotonic %s sum", name, p.Type, p.Monotonic, p.Temporality, p.Unit, wantType)
						}
						if p.Value != v || !p.Start.Equal(start) || !p.Time.Equal(end) {
							t.Errorf("%s@%v: value %v start %v time %v; want %v %v %v", name, end, p.Value, p.Start, p.Time, v, start, end)
						}
					}
					gauge := func(name, source, unit string, v float64) {
						t.Helper()
						p := pt(name, source, end1)
						if p.Type != "gauge" || p.Unit != unit || p.Value != v || !p.Start.Equal(t0) || !p.Time.Equal(end1) {
							t.Errorf("%s: %s unit %q value %v start %v time %v; want gauge %q %v %v %v", name, p.Type, p.Unit, p.Value, p.Start, p.Time, unit, v, t0, end1)
						}
					}
					hist := func(name, source, unit string, end, start time.Time, values []float64, maxScale int) otlptest.Point {
						t.Helper()
						p := pt(name, source, end)
						if p.Type != "exphist" || p.Temporality != wantType || p.Unit != unit || !p.Start.Equal(start) || !p.Time.Equal(end) {
							t.Errorf("%s: %s %s unit %q start %v time %v; want exphist %s %q %v %v", name, p.Type, p.Temporality, p.Unit, p.Start, p.Time, wantType, unit, start, end)
						}
						if maxScale == MaxScale {
							checkHist(t, name, p, refBuild(values, MaxScale, DefaultMaxBuckets))
						}
						return p
					}

					sum("requests", "web.1", end1, t0, 7)
					sum("logplex.dropped", "", end1, t0, 15)
					gauge("memory_rss", "web.1", "MiBy", 21.22)
					gauge("db_size", "DATABASE", "By", 8945836)
					gauge("pgpgin", "web.1", "{pages}", 348836)
					hist("db.latency", "web.1", "ms", end1, t0, []float64{4, 10, 7}, MaxScale)
					hist("temp", "web.2", "", end1, t0, []float64{-5, 0, 0, 2.5}, MaxScale)
					p := hist("router.service", "web.1", "ms", end1, t0, big, SketchScale)
					sorted := slices.Sorted(slices.Values(big))
					if p.Count != 2500 || p.Min != sorted[0] || p.Max != sorted[2499] || p.Scale > SketchScale || p.Zero != 0 || len(p.Neg) != 0 {
						t.Errorf("router.service: count %d min %v max %v scale %d zero %d neg %v", p.Count, p.Min, p.Max, p.Scale, p.Zero, p.Neg)
					}
					for q := 1; q <= 100; q++ {
						r := nearestRank(q, len(sorted))
						lo, hi, zero := rankBucket(p, uint64(r))
						if !inBucket(sorted[r], lo, hi, zero, aggregate.SketchAccuracy+1e-9) {
							t.Errorf("router.service p%d: %v not within 0.5%% of (%v, %v]", q, sorted[r], lo, hi)
						}
					}
					if temp == Cumulative {
						sum("requests", "web.1", end2, t0, 10)
						hist("db.latency", "web.1", "ms", end2, t0, []float64{4, 10, 7, 20}, MaxScale)
					} else {
						sum("requests", "web.1", end2, end1, 3)
						hist("db.latency", "web.1", "ms", end2, end1, []float64{20}, MaxScale)
					}
					if len(got) != 0 {
						t.Errorf("unexpected points: %v", keys(got))
					}
					st := o.Stats()
					if st.Points != 10 || st.Buckets != 2 || st.Queue.Sent != 2 || st.Queue.Dropped != 0 || st.Late != 0 {
						t.Errorf("stats %+v", st)
					}
				})
			}
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestDocExample checks the example of the package documentation.
func TestDocExample(t *testing.T) {
	a := t0.Add(10 * time.Second)
	ms := []metric.Measurement{
		m(metric.Counter, "requests", "web.1", a, 5, ""),
		m(metric.Sample, "memory_rss", "web.1", a, 21.22, "MB"),
		m(metric.Counter, "requests", "web.1", a.Add(time.Minute), 3, ""),
	}
	ms = append(ms, measures("router.service", "web.1", a, "ms", 12, 20)...)
	r := otlptest.New(t, otlptest.Options{})
	o, _ := newOutlet(t, r, Config{Prefix: "us-east.prod.app", Tags: map[string]string{"env": "prod"}})
	for _, b := range flush(t, ms) {
		o.Write(b)
	}
	closeOutlet(t, o)
	var lines []string
	for _, p := range r.Points() {
		l := fmt.Sprintf("%s %s %s %q start=%s time=%s %v", p.Key(), p.Type, p.Temporality, p.Unit, p.Start.Format("15:04"), p.Time.Format("15:04"), p.Value)
		if p.Type == "exphist" {
			l = fmt.Sprintf("%s %s %s %q start=%s time=%s count=%d sum=%v min=%v max=%v scale=%d buckets=%d",
				p.Key(), p.Type, p.Temporality, p.Unit, p.Start.Format("15:04"), p.Time.Format("15:04"), p.Count, p.Sum, p.Min, p.Max, p.Scale, sumOf(p.Pos))
		}
		lines = append(lines, l)
	}
	slices.Sort(lines)
	want := []string{
		`us-east.prod.app.memory_rss{env=prod,source=web.1} gauge  "MiBy" start=12:00 time=12:01 21.22`,
		`us-east.prod.app.requests{env=prod,source=web.1} sum cumulative "" start=12:00 time=12:01 5`,
		`us-east.prod.app.requests{env=prod,source=web.1} sum cumulative "" start=12:00 time=12:02 8`,
		`us-east.prod.app.router.service{env=prod,source=web.1} exphist cumulative "ms" start=12:00 time=12:01 count=2 sum=32 min=12 max=20 scale=7 buckets=2`,
	}
	if !slices.Equal(lines, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// TestPartialBucketTime: a bucket flushed before its end (shutdown) carries
// now as its time, never a future one.
func TestPartialBucketTime(t *testing.T) {
	r := otlptest.New(t, otlptest.Options{})
	now := t0.Add(25 * time.Second)
	o, _ := newOutlet(t, r, Config{Now: func() time.Time { return now }})
	o.Write(flush(t, []metric.Measurement{m(metric.Counter, "n", "web.1", t0.Add(time.Second), 1, "")})[0])
	closeOutlet(t, o)
	ps := r.Points()
	if len(ps) != 1 || !ps[0].Time.Equal(now) || !ps[0].Start.Equal(t0) {
		t.Fatalf("points %+v; want time %v start %v", ps, now, t0)
	}
}

// TestSharedTotals: with Series.Totals (shared state), cumulative sums are
// the shared totals from their start; histograms restart when the shared
// count shows buckets this worker did not see.
func TestSharedTotals(t *testing.T) {
	r := otlptest.New(t, otlptest.Options{})
	o, _ := newOutlet(t, r, Config{})
	shared := t0.Add(-time.Hour)
	bucket := func(start time.Time, count float64, total float64, values ...float64) *aggregate.Bucket {
		var ms []metric.Measurement
		ms = append(ms, m(metric.Counter, "jobs", "web.1", start.Add(time.Second), 2, ""))
		ms = append(ms, measures("lat", "web.1", start.Add(time.Second), "ms", values...)...)
		b := flush(t, ms)[0]
		for i := range b.Series {
			s := &b.Series[i]
			if s.Kind == metric.Counter {
				s.Totals = &aggregate.Totals{Start: shared, Sum: total, Count: 1}
			} else {
				s.Totals = &aggregate.Totals{Start: shared, Sum: 0, Count: count}
			}
		}
		return b
	}
	o.Write(bucket(t0, 10, 40, 1, 2))                    // 8 values were flushed elsewhere before: start here
	o.Write(bucket(t0.Add(time.Minute), 13, 42, 3))      // 10+1 ≠ 13: 2 values flushed elsewhere, so a reset
	o.Write(bucket(t0.Add(2*time.Minute), 14, 44, 4))    // 13+1: continuous since the reset
	o.Write(bucket(t0.Add(3*time.Minute), 16, 46, 5, 6)) // 14+2: continuous
	closeOutlet(t, o)
	got := byKey(t, r.Points())
	for i, want := range []float64{40, 42, 44, 46} {
		k := fmt.Sprintf("jobs{source=web.1}@%s", t0.Add(time.Duration(i+1)*time.Minute).Format("15:04:05"))
		if p := got[k]; p.Value != want || !p.Start.Equal(shared) || p.Temporality != "cumulative" {
			t.Errorf("%s: value %v start %v, want %v from %v", k, p.Value, p.Start, want, shared)
		}
	}
	wants := []struct {
		start time.Time
		count uint64
		sum   float64
	}{{t0, 2, 3}, {t0.Add(time.Minute), 1, 3}, {t0.Add(time.Minute), 2, 7}, {t0.Add(time.Minute), 4, 18}}
	for i, w := range wants {
		k := fmt.Sprintf("lat{source=web.1}@%s", t0.Add(time.Duration(i+1)*time.Minute).Format("15:04:05"))
		if p := got[k]; p.Count != w.count || p.Sum != w.sum || !p.Start.Equal(w.start) {
			t.Errorf("%s: count %d sum %v start %v; want %d %v %v", k, p.Count, p.Sum, p.Start, w.count, w.sum, w.start)
		}
	}
	if st := o.Stats(); st.Resets != 1 || st.TrackedSeries != 0 || st.TrackedHists != 1 {
		t.Errorf("stats %+v: want 1 reset, no local sums, 1 histogram", st)
	}
}

// TestCumulativeStateBounds: late buckets are folded in but not sent;
// evicted series start again with a new start time.
func TestCumulativeStateBounds(t *testing.T) {
	r := otlptest.New(t, otlptest.Options{})
	o, _ := newOutlet(t, r, Config{MaxTrackedSeries: 1})
	at := func(min int) time.Time { return t0.Add(time.Duration(min)*time.Minute + time.Second) }
	write := func(ms ...metric.Measurement) {
		for _, b := range flush(t, ms) {
			o.Write(b)
		}
	}
	write(m(metric.Counter, "a", "web.1", at(1), 1, ""))
	write(m(metric.Counter, "a", "web.1", at(0), 10, "")) // late: into the total, not sent
	write(m(metric.Counter, "a", "web.1", at(2), 2, ""))
	write(m(metric.Counter, "b", "web.1", at(3), 5, "")) // evicts a
	write(m(metric.Counter, "a", "web.1", at(4), 4, "")) // a again: new start
	closeOutlet(t, o)
	var lines []string
	for _, p := range r.Points() {
		lines = append(lines, fmt.Sprintf("%s %v %s-%s", p.Name, p.Value, p.Start.Format("15:04"), p.Time.Format("15:04")))
	}
	want := []string{"a 1 12:01-12:02", "a 13 12:01-12:03", "b 5 12:03-12:04", "a 4 12:04-12:05"}
	if !slices.Equal(lines, want) {
		t.Errorf("got %q, want %q", lines, want)
	}
	if st := o.Stats(); st.Late != 1 || st.Evicted != 2 || st.TrackedSeries != 1 {
		t.Errorf("stats %+v: want 1 late, 2 evicted, 1 tracked", st)
	}
}

// TestBatchBound: a bucket of many series is split into requests of at most
// MaxPointsPerRequest points, every point once.
func TestBatchBound(t *testing.T) {
	r := otlptest.New(t, otlptest.Options{})
	o, _ := newOutlet(t, r, Config{MaxPointsPerRequest: 7})
	var ms []metric.Measurement
	for i := range 50 {
		ms = append(ms, m(metric.Kind(i%3+1), fmt.Sprintf("m%02d", i), "web.1", t0.Add(time.Second), float64(i), ""))
	}
	o.Write(flush(t, ms)[0])
	closeOutlet(t, o)
	ps := r.Points()
	if len(ps) != 50 || len(byKey(t, ps)) != 50 {
		t.Fatalf("%d points, want 50 distinct", len(ps))
	}
	for _, p := range ps {
		if p.RequestPoints > 7 {
			t.Fatalf("a request carried %d points, bound 7", p.RequestPoints)
		}
	}
	if st := o.Stats(); st.Requests != 8 || st.Queue.Sent != 8 {
		t.Fatalf("stats %+v, want 8 requests", st)
	}
}

// doneRecorder collects Bucket.Done calls.
type doneRecorder struct {
	mu  sync.Mutex
	got []error
}

func (d *doneRecorder) done(name string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if name != QueueName {
		err = fmt.Errorf("Done called with outlet %q", name)
	}
	d.got = append(d.got, err)
}

func (d *doneRecorder) errs() []error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]error(nil), d.got...)
}

// TestFaults: how each receiver answer is handled.
func TestFaults(t *testing.T) {
	one := []metric.Measurement{
		m(metric.Counter, "n", "web.1", t0.Add(time.Second), 1, ""),
		m(metric.Sample, "g", "web.1", t0.Add(time.Second), 2, ""),
	}
	tests := map[string]struct {
		faults    []otlptest.Fault
		protocol  Protocol
		timeout   time.Duration
		delivered int // points the receiver accepted
		minTime   time.Duration
		check     func(t *testing.T, st Stats, logs string, done []error)
	}{
		"503 then 200": {
			faults:    []otlptest.Fault{{Status: 503, Body: "overloaded"}},
			delivered: 2,
			check: func(t *testing.T, st Stats, logs string, done []error) {
				if st.ServerErrors != 1 || st.Queue.Failed != 1 || st.Queue.Sent != 1 || done[0] != nil {
					t.Errorf("stats %+v done %v", st, done)
				}
			},
		},
		"429 with Retry-After": {
			faults:    []otlptest.Fault{{Status: 429, RetryAfter: "1"}},
			delivered: 2,
			minTime:   time.Second,
			check: func(t *testing.T, st Stats, logs string, done []error) {
				if st.ServerErrors != 1 || st.Queue.Sent != 1 || !strings.Contains(logs, "retry after 1s") {
					t.Errorf("stats %+v logs %s", st, logs)
				}
			},
		},
		"502 and 504": {
			faults:    []otlptest.Fault{{Status: 502}, {Status: 504}},
			delivered: 2,
			check: func(t *testing.T, st Stats, logs string, done []error) {
				if st.ServerErrors != 2 || st.Queue.Sent != 1 {
					t.Errorf("stats %+v", st)
				}
			},
		},
		"400 drops the batch": {
			faults: []otlptest.Fault{{Status: 400, Body: `{"code":3,"message":"metric name too long"}`}},
			check: func(t *testing.T, st Stats, logs string, done []error) {
				if st.Rejected != 1 || st.Queue.DroppedPermanent != 1 || st.Queue.DroppedMeasurements != 2 || st.Queue.Sent != 0 {
					t.Errorf("stats %+v", st)
				}
				if !strings.Contains(logs, "metric name too long") || !strings.Contains(logs, "refused by receiver") {
					t.Errorf("the drop is not logged with the receiver's message:\n%s", logs)
				}
				if len(done) != 1 || !errors.Is(done[0], outlet.ErrDropped) {
					t.Errorf("Done got %v, want ErrDropped", done)
				}
			},
		},
		"500 is not retried": {
			faults: []otlptest.Fault{{Status: 500}},
			check: func(t *testing.T, st Stats, logs string, done []error) {
				if st.Rejected != 1 || st.Queue.DroppedPermanent != 1 {
					t.Errorf("stats %+v", st)
				}
			},
		},
		"401 is retried": {
			faults:    []otlptest.Fault{{Status: 401}, {Status: 403}},
			delivered: 2,
			check: func(t *testing.T, st Stats, logs string, done []error) {
				if st.Queue.Unauthorized != 2 || st.Queue.Sent != 1 || !strings.Contains(logs, "credentials refused") {
					t.Errorf("stats %+v", st)
				}
			},
		},
		"partial success (protobuf)": {
			faults:    []otlptest.Fault{{PartialRejected: 1, PartialMessage: "g: unit not allowed"}},
			delivered: 2, // the fake decodes all; the outlet must count what it says it rejected
			check: func(t *testing.T, st Stats, logs string, done []error) {
				if st.Partial != 1 || st.PartialDropped != 1 || st.Queue.Sent != 1 || st.Queue.Failed != 0 || done[0] != nil {
					t.Errorf("stats %+v", st)
				}
				if !strings.Contains(logs, "unit not allowed") || !strings.Contains(logs, "rejected_points=1") {
					t.Errorf("partial success not logged:\n%s", logs)
				}
			},
		},
		"partial success (JSON)": {
			protocol:  HTTPJSON,
			faults:    []otlptest.Fault{{PartialRejected: 2, PartialMessage: "both"}},
			delivered: 2,
			check: func(t *testing.T, st Stats, logs string, done []error) {
				if st.Partial != 1 || st.PartialDropped != 2 {
					t.Errorf("stats %+v", st)
				}
			},
		},
		"2xx with an undecodable body": {
			faults: []otlptest.Fault{{Status: 200, Body: "\x0a\xff"}}, // the fake answers without reading
			check: func(t *testing.T, st Stats, logs string, done []error) {
				if st.BadResponses != 1 || st.Queue.Sent != 1 || done[0] != nil || !strings.Contains(logs, "does not decode") {
					t.Errorf("stats %+v\n%s", st, logs)
				}
			},
		},
		"slow receiver": {
			faults:    []otlptest.Fault{{Delay: 2 * time.Second}},
			timeout:   100 * time.Millisecond,
			delivered: 2,
			check: func(t *testing.T, st Stats, logs string, done []error) {
				if st.Queue.Failed != 1 || st.Queue.Sent != 1 || !strings.Contains(logs, "deadline exceeded") {
					t.Errorf("stats %+v\n%s", st, logs)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := otlptest.New(t, otlptest.Options{Headers: map[string]string{"Api-Key": "k-123456"}})
			for _, f := range tc.faults {
				r.Inject(1, f)
			}
			o, logs := newOutlet(t, r, Config{Protocol: tc.protocol, Timeout: tc.timeout, Headers: map[string]string{"Api-Key": "k-123456"}})
			var d doneRecorder
			b := flush(t, one)[0]
			b.Done = d.done
			start := time.Now()
			o.Write(b)
			closeOutlet(t, o)
			if el := time.Since(start); el < tc.minTime {
				t.Errorf("delivered after %v, want at least %v", el, tc.minTime)
			}
			if n := len(r.Points()); n != tc.delivered {
				t.Errorf("receiver accepted %d points, want %d", n, tc.delivered)
			}
			if errs := r.Errors(); len(errs) > 0 {
				t.Errorf("receiver refused: %q", errs)
			}
			done := d.errs()
			if len(done) != 1 {
				t.Fatalf("Done called %d times, want once", len(done))
			}
			if strings.Contains(logs.String(), "k-123456") {
				t.Errorf("logs contain the API key:\n%s", logs)
			}
			tc.check(t, o.Stats(), logs.String(), done)
		})
	}
}

// TestCloseFlushesAndDropsAfter: Close delivers what is queued; a bucket
// written after Close is dropped, counted and reported to Done.
func TestCloseFlushesAndDropsAfter(t *testing.T) {
	r := otlptest.New(t, otlptest.Options{})
	r.Inject(2, otlptest.Fault{Status: http.StatusServiceUnavailable})
	o, _ := newOutlet(t, r, Config{})
	ms := []metric.Measurement{m(metric.Counter, "n", "web.1", t0.Add(time.Second), 1, "")}
	o.Write(flush(t, ms)[0])
	closeOutlet(t, o)
	if n := len(r.Points()); n != 1 {
		t.Fatalf("%d points delivered by Close, want 1", n)
	}
	var d doneRecorder
	b := flush(t, ms)[0]
	b.Done = d.done
	o.Write(b)
	if errs := d.errs(); len(errs) != 1 || !errors.Is(errs[0], outlet.ErrDropped) {
		t.Fatalf("Done after Close: %v", errs)
	}
	if st := o.Stats(); st.ClosedDrops != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestSecretsNeverLogged: header values and the endpoint's query stay out
// of errors and logs even when the receiver echoes them.
func TestSecretsNeverLogged(t *testing.T) {
	const key = "very-secret-api-key"
	r := otlptest.New(t, otlptest.Options{})
	b64 := base64.StdEncoding.EncodeToString([]byte(key))
	r.Inject(1, otlptest.Fault{Status: 400, Body: "bad key " + key + " (" + b64 + ") and token=qsecret"})
	log, logs := testLogger()
	now := func() time.Time { return t0.Add(time.Hour) }
	o, err := New(Config{Endpoint: r.URL + otlptest.Path + "?token=qsecret", Headers: map[string]string{"X-Api-Key": key},
		Logger: log, Now: now, Queue: outlet.QueueConfig{Now: now, Backoff: func(int) time.Duration { return time.Millisecond }}})
	if err != nil {
		t.Fatal(err)
	}
	o.Write(flush(t, []metric.Measurement{m(metric.Counter, "n", "web.1", t0.Add(time.Second), 1, "")})[0])
	closeOutlet(t, o)
	if s := logs.String(); strings.Contains(s, key) || strings.Contains(s, b64) || strings.Contains(s, "qsecret") || !strings.Contains(s, "[redacted]") {
		t.Fatalf("logs:\n%s", s)
	}
}

// TestRequestBytesBound: requests stay under MaxRequestBytes before
// compression, in protobuf and JSON, and are not needlessly small.
func TestRequestBytesBound(t *testing.T) {
	const bound = 8 << 10
	var ms []metric.Measurement
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 120 {
		name, src := fmt.Sprintf("metric.with.a.long.name.%03d", i), fmt.Sprintf("web.%d", i%7+1)
		switch i % 3 {
		case 0:
			ms = append(ms, m(metric.Counter, name, src, t0.Add(time.Second), 1, ""))
		case 1:
			ms = append(ms, m(metric.Sample, name, src, t0.Add(time.Second), 2, "MB"))
		default:
			vs := make([]float64, 200)
			for j := range vs {
				vs[j] = math.Exp(r.NormFloat64() * 3) // wide: many buckets
			}
			ms = append(ms, measures(name, src, t0.Add(time.Second), "ms", vs...)...)
		}
	}
	bk := flush(t, ms)[0]
	for _, proto := range []Protocol{HTTPProtobuf, HTTPJSON} {
		t.Run(string(proto), func(t *testing.T) {
			rc := otlptest.New(t, otlptest.Options{})
			o, _ := newOutlet(t, rc, Config{Protocol: proto, Compression: CompressionNone, MaxRequestBytes: bound,
				Tags: map[string]string{"region": "us-east"}})
			o.Write(bk)
			closeOutlet(t, o)
			ps := rc.Points()
			if len(byKey(t, ps)) != 120 {
				t.Fatalf("%d distinct points, want 120", len(byKey(t, ps)))
			}
			sizes := map[int]int{}
			for _, p := range ps {
				sizes[p.Request] = p.RequestSize
			}
			total := 0
			for req, size := range sizes {
				total += size
				if size > bound {
					t.Errorf("request %d: %d bytes, bound %d", req, size, bound)
				}
			}
			if min := (total + bound - 1) / bound; len(sizes) > 3*min {
				t.Errorf("%d requests for %d bytes: more than 3 times the %d needed", len(sizes), total, min)
			}
			t.Logf("%d requests, %d bytes", len(sizes), total)
		})
	}
}

// TestInvalidUTF8: names and sources that are not UTF-8 are repaired, not
// refused with the whole request.
func TestInvalidUTF8(t *testing.T) {
	r := otlptest.New(t, otlptest.Options{})
	o, _ := newOutlet(t, r, Config{Protocol: HTTPJSON})
	o.Write(flush(t, []metric.Measurement{
		m(metric.Counter, "bad\xffname", "web\xfe.1", t0.Add(time.Second), 1, "\xffunit"),
		m(metric.Counter, "good", "web.1", t0.Add(time.Second), 2, ""),
	})[0])
	closeOutlet(t, o)
	if errs := r.Errors(); len(errs) > 0 {
		t.Fatalf("receiver refused: %q", errs)
	}
	got := byKey(t, r.Points())
	bad, ok := got["bad\uFFFDname{source=web\uFFFD.1}@12:01:00"]
	if !ok || bad.Value != 1 || bad.Unit != "{_unit}" {
		t.Fatalf("points %v", keys(got))
	}
	if got["good{source=web.1}@12:01:00"].Value != 2 {
		t.Fatalf("points %v", keys(got))
	}
}

// TestConcurrentWrites: Write and Stats from several goroutines (run with
// -race); every point arrives once.
func TestConcurrentWrites(t *testing.T) {
	r := otlptest.New(t, otlptest.Options{})
	o, _ := newOutlet(t, r, Config{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				ms := []metric.Measurement{m(metric.Counter, fmt.Sprintf("g%d", g), "web.1", t0.Add(time.Duration(i)*time.Minute+time.Second), 1, "")}
				ms = append(ms, measures(fmt.Sprintf("h%d", g), "web.1", t0.Add(time.Duration(i)*time.Minute+time.Second), "ms", 1, 2, 3)...)
				o.Write(flush(t, ms)[0])
				_ = o.Stats()
			}
		}()
	}
	wg.Wait()
	closeOutlet(t, o)
	got := byKey(t, r.Points())
	if len(got) != 40 {
		t.Fatalf("%d distinct points, want 40", len(got))
	}
	for g := range 4 {
		k := fmt.Sprintf("g%d{source=web.1}@12:05:00", g)
		if p := got[k]; p.Value != 5 || !p.Start.Equal(t0) {
			t.Errorf("%s: %v from %v, want 5 from %v", k, p.Value, p.Start, t0)
		}
		k = fmt.Sprintf("h%d{source=web.1}@12:05:00", g)
		if p := got[k]; p.Count != 15 || p.Sum != 30 {
			t.Errorf("%s: count %d sum %v, want 15 and 30", k, p.Count, p.Sum)
		}
	}
}

// TestJSONRules: the http/json body follows the OTLP JSON rules the
// receivers' parsers rely on: lowerCamelCase names, enums as integers,
// 64-bit integers as strings.
func TestJSONRules(t *testing.T) {
	cfg, err := Config{Endpoint: "http://x/v1/metrics", Protocol: HTTPJSON, Compression: CompressionNone}.check()
	if err != nil {
		t.Fatal(err)
	}
	e := newEncoder(cfg)
	ms := []metric.Measurement{m(metric.Counter, "n", "web.1", t0.Add(time.Second), 3, "")}
	ms = append(ms, measures("h", "web.1", t0.Add(time.Second), "ms", 1, 2, 3)...)
	var body string
	if err := e.encode(flush(t, ms)[0], func(b []byte, _ int) { body += string(b) }); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"resourceMetrics":[`, `"scopeMetrics":[`, `"dataPoints":[`, `"aggregationTemporality":2`,
		`"isMonotonic":true`, `"startTimeUnixNano":"1777636800000000000"`, `"timeUnixNano":"1777636860000000000"`,
		`"count":"3"`, `"bucketCounts":[`, `"asDouble":3`, `"stringValue":"web.1"`} {
		if !strings.Contains(body, want) {
			t.Errorf("JSON body lacks %s:\n%s", want, body)
		}
	}
	for _, bad := range []string{"resource_metrics", "AGGREGATION_TEMPORALITY", "start_time_unix_nano"} {
		if strings.Contains(body, bad) {
			t.Errorf("JSON body contains %s:\n%s", bad, body)
		}
	}
}

// TestUnknownKindSkipped: a series of a kind the outlet does not know is
// skipped and counted; the rest of its bucket is sent.
func TestUnknownKindSkipped(t *testing.T) {
	r := otlptest.New(t, otlptest.Options{})
	o, _ := newOutlet(t, r, Config{})
	b := flush(t, []metric.Measurement{
		m(metric.Counter, "odd", "web.1", t0.Add(time.Second), 1, ""),
		m(metric.Counter, "good", "web.1", t0.Add(time.Second), 2, ""),
	})[0]
	for i := range b.Series {
		if b.Series[i].Name == "odd" {
			b.Series[i].Kind = metric.Kind(200)
		}
	}
	o.Write(b)
	closeOutlet(t, o)
	got := byKey(t, r.Points())
	if len(got) != 1 || got["good{source=web.1}@12:01:00"].Value != 2 {
		t.Fatalf("points %v, want good only", keys(got))
	}
	if st := o.Stats(); st.Unknown != 1 || st.Points != 1 {
		t.Fatalf("Unknown %d, Points %d; want 1, 1", st.Unknown, st.Points)
	}
}

// failingMarshaler is a pmetric.Marshaler that always fails.
type failingMarshaler struct{}

func (failingMarshaler) MarshalMetrics(pmetric.Metrics) ([]byte, error) {
	return nil, errors.New("no encoding today")
}

// TestEncodeErrorDropsBucket: a bucket that cannot be encoded is dropped
// whole (not in part), counted, logged and reported to Done; the next one
// is sent, and a cumulative sum's total still carries the dropped value.
func TestEncodeErrorDropsBucket(t *testing.T) {
	r := otlptest.New(t, otlptest.Options{})
	o, logs := newOutlet(t, r, Config{})
	ms := []metric.Measurement{m(metric.Counter, "n", "web.1", t0.Add(time.Second), 1, "")}
	var good pmetric.Marshaler
	o.Base.Stats(func() { good, o.enc.marshaler = o.enc.marshaler, failingMarshaler{} })
	var d doneRecorder
	b := flush(t, ms)[0]
	b.Done = d.done
	o.Write(b)
	if errs := d.errs(); len(errs) != 1 || !errors.Is(errs[0], outlet.ErrDropped) || !strings.Contains(errs[0].Error(), "no encoding today") {
		t.Fatalf("Done: %v", errs)
	}
	o.Base.Stats(func() { o.enc.marshaler = good })
	o.Write(flush(t, []metric.Measurement{m(metric.Counter, "n", "web.1", t0.Add(time.Minute+time.Second), 3, "")})[0])
	closeOutlet(t, o)
	if st := o.Stats(); st.EncodeErrors != 1 || st.Requests != 1 {
		t.Fatalf("EncodeErrors %d, Requests %d; want 1, 1", st.EncodeErrors, st.Requests)
	}
	// One point, the second bucket's: cumulative, its total still holds
	// the dropped bucket's 1 (the running total was updated before encoding).
	if pts := r.Points(); len(pts) != 1 || pts[0].Value != 4 || !pts[0].Time.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("points %+v, want the second bucket's only, total 4", pts)
	}
	if !strings.Contains(logs.String(), "cannot encode") {
		t.Fatalf("not logged: %s", logs.String())
	}
}
