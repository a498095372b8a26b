package librato

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
)

var start = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func collect(e *encoder, b *aggregate.Bucket) ([]string, encodeStats) {
	var bodies []string
	st := e.encode(b, func(body []byte, n int) { bodies = append(bodies, fmt.Sprintf("%d %s", n, body)) })
	return bodies, st
}

func TestEncodeExact(t *testing.T) {
	b := &aggregate.Bucket{Start: start, Period: time.Minute, Series: []aggregate.Series{
		{Name: "lat", Source: "web.1", Unit: "ms", Kind: metric.Measure, Count: 2, Sum: 3, Min: 1, Max: 2, SumSquares: 5, Last: 2, Median: 1, P95: 2, P99: 2},
		{Name: "req", Kind: metric.Counter, Count: 1, Sum: 1e21},
		{Name: "tiny", Source: "web.2", Unit: `"q"`, Kind: metric.Sample, Last: 1e-7},
		{Name: "nan", Kind: metric.Sample, Last: math.NaN()},
		{Name: "huge", Kind: metric.Counter, Sum: 2e126},
		{Name: "", Kind: metric.Counter, Sum: 1},
	}}
	tests := map[string]struct {
		enc  *encoder
		want string
	}{
		"metrics": {newEncoder(false, "p", nil), `{"measure_time":1714564800,"gauges":[` +
			`{"name":"p.lat","source":"web.1","period":60,"attributes":{"display_units_short":"ms"},"count":2,"sum":3,"min":1,"max":2,"sum_squares":5},` +
			`{"name":"p.lat.median","source":"web.1","period":60,"attributes":{"display_units_short":"ms"},"value":1},` +
			`{"name":"p.lat.perc95","source":"web.1","period":60,"attributes":{"display_units_short":"ms"},"value":2},` +
			`{"name":"p.lat.perc99","source":"web.1","period":60,"attributes":{"display_units_short":"ms"},"value":2},` +
			`{"name":"p.req","period":60,"value":1e+21},` +
			`{"name":"p.tiny","source":"web.2","period":60,"attributes":{"display_units_short":"\"q\""},"value":1e-7}]}`},
		"measurements": {newEncoder(true, "", map[string]string{"env": "Prod"}), `{"time":1714564800,"period":60,"measurements":[` +
			`{"name":"lat","tags":{"dyno":"web.1","env":"prod"},"attributes":{"display_units_short":"ms"},"count":2,"sum":3,"min":1,"max":2,"last":2},` +
			`{"name":"lat.median","tags":{"dyno":"web.1","env":"prod"},"attributes":{"display_units_short":"ms"},"value":1},` +
			`{"name":"lat.perc95","tags":{"dyno":"web.1","env":"prod"},"attributes":{"display_units_short":"ms"},"value":2},` +
			`{"name":"lat.perc99","tags":{"dyno":"web.1","env":"prod"},"attributes":{"display_units_short":"ms"},"value":2},` +
			`{"name":"req","tags":{"env":"prod"},"value":1e+21},` +
			`{"name":"tiny","tags":{"dyno":"web.2","env":"prod"},"attributes":{"display_units_short":"\"q\""},"value":1e-7}]}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			bodies, st := collect(tc.enc, b)
			want := "6 " + tc.want
			if len(bodies) != 1 || bodies[0] != want {
				t.Fatalf("got\n%q\nwant\n%q", bodies, want)
			}
			if !json.Valid([]byte(bodies[0][2:])) {
				t.Fatal("invalid JSON")
			}
			if st != (encodeStats{series: 3, measurements: 6, batches: 1, skipped: 3}) {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestEncodeSplitsBatches(t *testing.T) {
	b := &aggregate.Bucket{Start: start, Period: time.Minute}
	for i := range 151 { // 151 measures = 604 measurements
		b.Series = append(b.Series, aggregate.Series{Name: fmt.Sprint("m", i), Kind: metric.Measure, Count: 1, Sum: 1})
	}
	for api, want := range map[bool][]int{false: {300, 300, 4}, true: {604}} {
		var ns []int
		newEncoder(api, "", nil).encode(b, func(body []byte, n int) {
			if !json.Valid(body) {
				t.Fatalf("invalid JSON %s", body)
			}
			ns = append(ns, n)
		})
		if fmt.Sprint(ns) != fmt.Sprint(want) {
			t.Fatalf("tagged=%v: batches %v, want %v", api, ns, want)
		}
	}
}

// benchBucket has n series: a third of each kind, over 10 dynos, with units.
func benchBucket(n int) *aggregate.Bucket {
	b := &aggregate.Bucket{Start: start, Period: time.Minute}
	for i := range n {
		s := aggregate.Series{Name: fmt.Sprintf("router.service.%05d", i), Source: fmt.Sprintf("web.%d", i%10+1),
			Count: 17, Sum: 1234.5, Last: 71.25, Min: 3, Max: 402.75, SumSquares: 98765.4321, Median: 61.5, P95: 350, P99: 401}
		s.Kind = [3]metric.Kind{metric.Counter, metric.Sample, metric.Measure}[i%3]
		if s.Kind == metric.Measure {
			s.Unit = "ms"
		}
		b.Series = append(b.Series, s)
	}
	return b
}

func BenchmarkEncodeMetrics10k(b *testing.B) { benchEncode(b, false) }

func BenchmarkEncodeMeasurements10k(b *testing.B) { benchEncode(b, true) }

func benchEncode(b *testing.B, tagged bool) {
	bucket := benchBucket(10000)
	e := newEncoder(tagged, "us-east.prod.app", map[string]string{"app": "myapp", "region": "us-east"})
	size := 0
	b.ReportAllocs()
	for b.Loop() {
		size = 0
		e.encode(bucket, func(body []byte, n int) { size += len(body) })
	}
	b.ReportMetric(float64(size), "bytes/bucket")
}

// The encoding/json baseline: the same bodies built from structs.
type jsonGauge struct {
	Name       string            `json:"name"`
	Source     string            `json:"source,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
	Period     int64             `json:"period,omitempty"`
	Attributes *jsonAttrs        `json:"attributes,omitempty"`
	Value      *float64          `json:"value,omitempty"`
	Count      int64             `json:"count,omitempty"`
	Sum        *float64          `json:"sum,omitempty"`
	Min        *float64          `json:"min,omitempty"`
	Max        *float64          `json:"max,omitempty"`
	SumSquares *float64          `json:"sum_squares,omitempty"`
	Last       *float64          `json:"last,omitempty"`
}

type jsonAttrs struct {
	Units string `json:"display_units_short"`
}

type jsonMetricsBody struct {
	MeasureTime int64       `json:"measure_time"`
	Gauges      []jsonGauge `json:"gauges"`
}

type jsonMeasurementsBody struct {
	Time         int64       `json:"time"`
	Period       int64       `json:"period"`
	Measurements []jsonGauge `json:"measurements"`
}

func encodeWithJSON(bk *aggregate.Bucket, tagged bool, prefix string, tags map[string]string, emit func([]byte)) {
	maxN := MaxMetricsPerPost
	if tagged {
		maxN = MaxMeasurementsPerPost
	}
	var gs []jsonGauge
	flush := func() {
		var body []byte
		if tagged {
			body, _ = json.Marshal(jsonMeasurementsBody{Time: bk.Start.Unix(), Period: 60, Measurements: gs})
		} else {
			body, _ = json.Marshal(jsonMetricsBody{MeasureTime: bk.Start.Unix(), Gauges: gs})
		}
		emit(body)
		gs = gs[:0]
	}
	f := func(v float64) *float64 { return &v }
	for _, s := range bk.Series {
		g := jsonGauge{Name: SanitizeName(prefix + "." + s.Name)}
		if tagged {
			g.Tags = map[string]string{"dyno": s.Source}
			for k, v := range tags {
				g.Tags[k] = v
			}
		} else {
			g.Source, g.Period = s.Source, 60
		}
		if s.Unit != "" {
			g.Attributes = &jsonAttrs{s.Unit}
		}
		add := func(g jsonGauge) {
			gs = append(gs, g)
			if len(gs) == maxN {
				flush()
			}
		}
		switch s.Kind {
		case metric.Counter:
			g.Value = f(s.Sum)
			add(g)
		case metric.Sample:
			g.Value = f(s.Last)
			add(g)
		case metric.Measure:
			c := g
			c.Count, c.Sum, c.Min, c.Max = s.Count, f(s.Sum), f(s.Min), f(s.Max)
			if tagged {
				c.Last = f(s.Last)
			} else {
				c.SumSquares = f(s.SumSquares)
			}
			add(c)
			for i, v := range [3]float64{s.Median, s.P95, s.P99} {
				p := g
				p.Name += percentileSuffixes[i]
				p.Value = f(v)
				add(p)
			}
		}
	}
	if len(gs) > 0 {
		flush()
	}
}

func BenchmarkEncodeJSONBaselineMetrics10k(b *testing.B) { benchJSON(b, false) }

func BenchmarkEncodeJSONBaselineMeasurements10k(b *testing.B) { benchJSON(b, true) }

func benchJSON(b *testing.B, tagged bool) {
	bucket := benchBucket(10000)
	tags := map[string]string{"app": "myapp", "region": "us-east"}
	b.ReportAllocs()
	for b.Loop() {
		encodeWithJSON(bucket, tagged, "us-east.prod.app", tags, func([]byte) {})
	}
}
