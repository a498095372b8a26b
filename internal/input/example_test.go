package input_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/inputtest"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// Reading stdin (`webapp | worker -stdin`): bare app lines, `heroku logs`
// lines and syslog lines all work; a line without a timestamp gets the
// arrival time.
func ExampleProcessor_ReadLines() {
	sink := input.SinkFunc(func(ms []metric.Measurement) {
		for _, m := range ms {
			fmt.Println(inputtest.Format(m))
		}
	})
	p, err := input.NewProcessor(sink, input.Config{
		Now: func() time.Time { return time.Date(2024, 5, 1, 12, 0, 30, 0, time.UTC) },
	})
	if err != nil {
		panic(err)
	}
	stdin := strings.NewReader("count#req=1 measure#db.latency=4ms\n" +
		"2024-05-01T12:00:00.200000+00:00 app[web.1]: sample#queue.depth=7\n")
	if err := p.ReadLines(context.Background(), stdin, input.FormatAny); err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", p.Stats())
	// Output:
	// 2024-05-01T12:00:30Z  count req=1
	// 2024-05-01T12:00:30Z  measure db.latency=4ms
	// 2024-05-01T12:00:00.2Z web.1 sample queue.depth=7
	// {Lines:2 Measurements:3 RejectedLines:0 RejectedPairs:0 MalformedFrames:0 BadHeaders:0 OverlongLines:0 BrokenStreams:0 SinkCalls:1}
}
