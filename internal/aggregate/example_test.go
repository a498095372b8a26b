package aggregate_test

import (
	"fmt"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
)

func Example() {
	start := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	agg, err := aggregate.New(aggregate.Config{
		Resolution: time.Minute,
		Now:        func() time.Time { return start.Add(time.Minute) }, // the clock Add checks timestamps against
	})
	if err != nil {
		panic(err)
	}
	at := func(sec int) time.Time { return start.Add(time.Duration(sec) * time.Second) }
	agg.Add([]metric.Measurement{
		{Name: "router.service", Source: "web.1", Kind: metric.Measure, Value: 31, Unit: "ms", Time: at(7)},
		{Name: "router.service", Source: "web.1", Kind: metric.Measure, Value: 12, Unit: "ms", Time: at(20)},
		{Name: "router.service", Source: "web.1", Kind: metric.Measure, Value: 32, Unit: "ms", Time: at(41)},
		{Name: "requests", Source: "web.1", Kind: metric.Counter, Value: 3, Time: at(41)},
		{Name: "memory_total", Source: "web.1", Kind: metric.Sample, Value: 210.5, Unit: "MB", Time: at(50)},
		{Name: "requests", Source: "web.1", Kind: metric.Counter, Value: 1, Time: at(65)}, // next bucket
	})

	// Not due yet: the bucket ends at 12:01:00 and the grace runs 10s more.
	fmt.Println(len(agg.Flush(at(69))))
	for _, b := range agg.Flush(at(70)) {
		fmt.Println(b.Start.Format(time.TimeOnly), b.Period)
		for _, s := range b.Series {
			switch s.Kind {
			case metric.Counter:
				fmt.Printf("  %s %s count: sum=%g\n", s.Name, s.Source, s.Sum)
			case metric.Sample:
				fmt.Printf("  %s %s sample: last=%g%s\n", s.Name, s.Source, s.Last, s.Unit)
			case metric.Measure:
				fmt.Printf("  %s %s measure: count=%d sum=%g min=%g max=%g median=%g p95=%g %s\n",
					s.Name, s.Source, s.Count, s.Sum, s.Min, s.Max, s.Median, s.P95, s.Unit)
			}
		}
	}
	// A line for the flushed bucket is now late.
	agg.Add([]metric.Measurement{{Name: "requests", Source: "web.1", Kind: metric.Counter, Value: 1, Time: at(59)}})
	st := agg.Stats()
	fmt.Println("added", st.Added, "late", st.Late, "open", st.OpenSeries)
	// Output:
	// 0
	// 12:00:00 1m0s
	//   memory_total web.1 sample: last=210.5MB
	//   requests web.1 count: sum=3
	//   router.service web.1 measure: count=3 sum=75 min=12 max=32 median=31 p95=32 ms
	// added 6 late 1 open 1
}

// ExampleState_Merge combines the state of one series from two worker
// processes.
func ExampleState_Merge() {
	t := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	a := aggregate.NewState("router.service", "web.1", "ms", metric.Measure)
	b := aggregate.NewState("router.service", "web.1", "ms", metric.Measure)
	a.Add(t, 10)
	a.Add(t.Add(time.Second), 30)
	b.Add(t.Add(2*time.Second), 20)

	wire, _ := b.MarshalBinary() // sent from the other process
	var received aggregate.State
	if err := received.UnmarshalBinary(wire); err != nil {
		panic(err)
	}
	if err := a.Merge(&received); err != nil {
		panic(err)
	}
	s := a.Series()
	fmt.Printf("count=%d sum=%g median=%g last=%g\n", s.Count, s.Sum, s.Median, s.Last)
	// Output: count=3 sum=60 median=20 last=20
}
