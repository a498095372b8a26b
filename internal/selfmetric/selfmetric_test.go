package selfmetric_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/selfmetric"
	metrics "github.com/rcrowley/go-metrics"
)

type inner struct {
	Lines    uint64 `metric:"lines"`
	Rejected uint64 `metric:"rejected,drop"`
	Frames   uint64 `metric:"frames,drop"`
}

type stats struct {
	Requests  uint64        `metric:"requests"`
	TooLarge  uint64        `metric:"too_large,drop"`
	GzipBombs uint64        `metric:"gzip_bombs too_large,drop"`
	Queued    int           `metric:"queued,gauge"`
	Latency   time.Duration `metric:"latency_ms,gauge"`
	Bytes     uint64        `metric:"-"`
	Input     inner         `metric:",only=lines rejected"`
	private   int
}

func TestRegister(t *testing.T) {
	r := metrics.NewRegistry()
	st := stats{Requests: 7, TooLarge: 2, GzipBombs: 3, Queued: 4, Latency: 1500 * time.Millisecond, Bytes: 99,
		Input: inner{Lines: 11, Rejected: 1, Frames: 5}}
	if err := selfmetric.Register(r, "worker.x.", func() stats { return st }); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{
		"worker.x.requests": 7, "worker.x.too_large": 5, "worker.x.gzip_bombs": 3, "worker.x.queued": 4,
		"worker.x.latency_ms": 1500, "worker.x.lines": 11, "worker.x.rejected": 1,
	}
	got := map[string]int64{}
	r.Each(func(name string, m any) {
		switch m := m.(type) {
		case metrics.Counter:
			got[name] = m.Count()
		case metrics.Gauge:
			got[name] = -m.Value() // gauges negated, to tell them apart
		}
	})
	want["worker.x.queued"], want["worker.x.latency_ms"] = -4, -1500
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("registered %v\nwant %v", got, want)
	}
	st.Requests = 9 // read at each emission
	if n := r.Get("worker.x.requests").(metrics.Counter).Count(); n != 9 {
		t.Errorf("requests = %d after the statistic moved to 9", n)
	}
	if err := selfmetric.Register(r, "worker.x.", func() stats { return st }); err == nil {
		t.Error("registering the same names twice: no error")
	}
}

func TestMetricsFields(t *testing.T) {
	ms, err := selfmetric.Metrics("p.", reflect.TypeFor[stats]())
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, m := range ms {
		lines = append(lines, m.Name+" "+strings.Join(m.Fields, "+")+map[bool]string{true: " drop"}[m.Drop]+map[bool]string{true: " gauge"}[m.Gauge])
	}
	want := []string{
		"p.requests selfmetric_test.stats.Requests",
		"p.too_large selfmetric_test.stats.TooLarge+selfmetric_test.stats.GzipBombs drop",
		"p.gzip_bombs selfmetric_test.stats.GzipBombs drop",
		"p.queued selfmetric_test.stats.Queued gauge",
		"p.latency_ms selfmetric_test.stats.Latency gauge",
		"p.lines selfmetric_test.stats.Input.Lines",
		"p.rejected selfmetric_test.stats.Input.Rejected drop",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestBadTags(t *testing.T) {
	tests := map[string]struct {
		typ  reflect.Type
		want string
	}{
		"untagged": {reflect.TypeFor[struct {
			A uint64 `metric:"a"`
			B uint64
		}](), "B has no metric tag"},
		"gauge and counter": {reflect.TypeFor[struct {
			A int `metric:"x,gauge"`
			B int `metric:"x"`
		}](), "both a gauge and a counter"},
		"unknown option": {reflect.TypeFor[struct {
			A int `metric:"x,dorp"`
		}](), `unknown tag option "dorp"`},
		"not a number": {reflect.TypeFor[struct {
			A string `metric:"x"`
		}](), "cannot be published"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := selfmetric.Metrics("", tc.typ); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Metrics: %v, want %q", err, tc.want)
			}
		})
	}
}
