package emitter_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/dynometrics/dynometrics/emitter"
	metrics "github.com/rcrowley/go-metrics"
)

func ExampleNew() {
	reg := metrics.NewRegistry()
	requests := metrics.GetOrRegisterCounter("http.requests", reg)
	e, err := emitter.New(emitter.Config{Registry: reg, Writer: os.Stdout, Prefix: "myapp"})
	if err != nil {
		fmt.Println(err)
		return
	}
	requests.Inc(3)
	e.Flush()
	requests.Inc(1)
	e.Flush()
	// Output:
	// at=metrics count#myapp.http.requests=3
	// at=metrics count#myapp.http.requests=1
}

func ExampleNew_source() {
	reg := metrics.NewRegistry()
	metrics.GetOrRegisterGauge("queue.depth", reg).Update(7)
	e, _ := emitter.New(emitter.Config{Registry: reg, Source: "worker.1"})
	e.WriteTo(os.Stdout)
	// Output:
	// at=metrics source=worker.1 sample#queue.depth=7
}

func ExampleNewTimer() {
	reg := metrics.NewRegistry()
	query := emitter.GetOrRegisterTimer("db.query", reg)
	for _, d := range []time.Duration{4, 1, 2, 3, 12} {
		query.Update(d * time.Millisecond)
	}
	e, _ := emitter.New(emitter.Config{Registry: reg})
	e.WriteTo(os.Stdout)
	e.WriteTo(os.Stdout) // a new interval: no durations yet
	// Output:
	// at=metrics count#db.query.count=5 sample#db.query.min=1ms sample#db.query.mean=4.4ms sample#db.query.median=3ms sample#db.query.perc95=10.4ms sample#db.query.perc99=11.68ms sample#db.query.max=12ms
	// at=metrics count#db.query.count=0
}

func ExampleNewHistogram() {
	reg := metrics.NewRegistry()
	size := emitter.GetOrRegisterHistogram("payload.bytes", reg)
	for _, v := range []int64{100, 200, 300, 400} {
		size.Update(v)
	}
	e, _ := emitter.New(emitter.Config{Registry: reg})
	e.WriteTo(os.Stdout)
	// Output:
	// at=metrics count#payload.bytes.count=4 sample#payload.bytes.min=100 sample#payload.bytes.mean=250 sample#payload.bytes.median=250 sample#payload.bytes.perc95=385 sample#payload.bytes.perc99=397 sample#payload.bytes.max=400
}

func ExampleEmitter_WriteTo_gauges() {
	reg := metrics.NewRegistry()
	metrics.GetOrRegisterGauge("conns", reg).Update(12)
	metrics.GetOrRegisterGaugeFloat64("cache.hit_ratio", reg).Update(0.875)
	metrics.NewRegisteredFunctionalGauge("workers", reg, func() int64 { return 4 })
	e, _ := emitter.New(emitter.Config{Registry: reg})
	e.WriteTo(os.Stdout)
	// Output:
	// at=metrics sample#cache.hit_ratio=0.875 sample#conns=12 sample#workers=4
}

func ExampleEmitter_WriteTo_meter() {
	reg := metrics.NewRegistry()
	jobs := metrics.GetOrRegisterMeter("jobs.done", reg)
	jobs.Mark(40)
	e, _ := emitter.New(emitter.Config{Registry: reg})
	e.WriteTo(os.Stdout)
	jobs.Mark(2)
	e.WriteTo(os.Stdout)
	// Output:
	// at=metrics count#jobs.done=40
	// at=metrics count#jobs.done=2
}

func ExampleSet() {
	reg := metrics.NewRegistry()
	users := emitter.NewSet()
	reg.Register("active_users", users)
	for _, u := range []string{"alice", "bob", "alice"} {
		users.Add(u)
	}
	e, _ := emitter.New(emitter.Config{Registry: reg})
	e.WriteTo(os.Stdout)
	// Output:
	// at=metrics count#active_users=2
}

func ExampleEmitter_HandleStatsd() {
	reg := metrics.NewRegistry()
	e, _ := emitter.New(emitter.Config{Registry: reg})
	e.HandleStatsd([]byte("jobs:1|c\njobs:1|c|@0.5\nqueue:10|g\nqueue:-3|g\nnot statsd\n"))
	e.WriteTo(os.Stdout)
	fmt.Printf("malformed lines: %d\n", e.Stats().Statsd.Malformed)
	// Output:
	// at=metrics count#jobs=3 sample#queue=7
	// malformed lines: 1
}

func ExampleEmitter_Run() {
	reg := metrics.NewRegistry()
	metrics.GetOrRegisterCounter("shutdown.safe", reg).Inc(1)
	e, _ := emitter.New(emitter.Config{Registry: reg})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as on SIGTERM: Run emits once more and returns
	if err := e.Run(ctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// at=metrics count#shutdown.safe=1
}

func ExampleEmitter_Start() {
	reg := metrics.NewRegistry()
	requests := metrics.GetOrRegisterCounter("http.requests", reg)
	em, err := emitter.New(emitter.Config{Registry: reg})
	if err != nil {
		fmt.Println(err)
		return
	}
	em.Start()      // emits every minute, on the minute
	defer em.Stop() // in main: when it returns, emit once more and wait for it

	requests.Inc(2) // … the application runs until SIGTERM …
	// Output:
	// at=metrics count#http.requests=2
}

func ExampleSanitizeName() {
	fmt.Println(emitter.SanitizeName("myapp", "GET /users/{id} #2"))
	// Output:
	// myapp.GET__users__id___2
}

func ExampleFromEnv() {
	os.Setenv("EMITTER_INTERVAL", "ten seconds")
	defer os.Unsetenv("EMITTER_INTERVAL")
	_, err := emitter.FromEnv()
	fmt.Println(err)
	// Output:
	// emitter: invalid configuration: EMITTER_INTERVAL="ten seconds" is not a valid time.Duration: time: invalid duration "ten seconds"
}

// AppendValue prints a value as the emitter's lines do: no exponent, no
// binary floating-point noise.
func ExampleAppendValue() {
	for _, v := range []float64{120, 909.5000000000001, 0.1 + 0.2, -1e21, 12.3456789012345} {
		fmt.Println(string(emitter.AppendValue(nil, v)))
	}
	// Output:
	// 120
	// 909.5
	// 0.3
	// -1000000000000000000000
	// 12.3456789012
}
