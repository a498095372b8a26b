package main

import (
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dynometrics/dynometrics/internal/appstats"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/metric"
	metrics "github.com/rcrowley/go-metrics"
)

// TestAppSelfMetrics: in multi-app mode the worker registers
// worker.app._other.* at start and worker.app.<app>.* as each of the first
// appstats.MaxApps apps arrives; later apps are counted under _other; the
// registered counters read the real counts.
func TestAppSelfMetrics(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:1")
	cfg.Drain = drain.Env{Secret: appSecretNew}
	cfg.Metrics.Prefix = "{app}"
	names := registeredNames(t, cfg, options{})
	var appNames []string
	for _, n := range names {
		if strings.HasPrefix(n, "worker.app.") {
			appNames = append(appNames, n)
		}
	}
	want := []string{"worker.app._other.lines counter", "worker.app._other.measurements counter", "worker.app._other.refused counter"}
	for r := range appstats.NumReasons {
		want = append(want, "worker.app._other.dropped."+r.String()+" counter")
	}
	slices.Sort(want)
	if !slices.Equal(appNames, want) {
		t.Fatalf("per-app self-metrics at start:\n%s\nwant\n%s", strings.Join(appNames, "\n"), strings.Join(want, "\n"))
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	w, err := newWorker(cfg, options{stdout: io.Discard, logger: slog.New(slog.NewTextHandler(io.Discard, nil)), drainListener: l})
	if err != nil {
		t.Fatal(err)
	}
	for i := range appstats.MaxApps + 3 {
		app := "app-" + strconv.Itoa(i)
		ms := []metric.Measurement{{App: app, Name: "n", Source: "web.1", Kind: metric.Counter, Value: 1, Time: w.opt.now()}}
		w.agg.Add(append(ms, ms[0], ms[0])) // 3 measurements
	}
	c := func(name string) int64 {
		m, ok := w.reg.Get(name).(metrics.Counter)
		if !ok {
			t.Fatalf("%s not registered", name)
		}
		return m.Count()
	}
	if got := c("worker.app.app-0.measurements"); got != 3 {
		t.Errorf("app-0 measurements = %d, want 3", got)
	}
	if got := c("worker.app._other.measurements"); got != 3*3 {
		t.Errorf("_other measurements = %d, want 9 (3 apps beyond %d)", got, appstats.MaxApps)
	}
	if w.reg.Get("worker.app.app-"+strconv.Itoa(appstats.MaxApps)+".measurements") != nil {
		t.Error("an app beyond MaxApps has self-metrics of its own")
	}
}
