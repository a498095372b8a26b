package librato_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/librato"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/outlet"
)

func ExampleNew() {
	start := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	// A stand-in for https://metrics-api.librato.com that prints what it gets.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		user, _, _ := r.BasicAuth()
		fmt.Println(r.Method, r.URL.Path, user)
		fmt.Println(string(body))
	}))
	defer srv.Close()

	o, err := librato.New(librato.Config{
		User:   "ops@example.com",
		Token:  "api-token",
		URL:    srv.URL,
		Prefix: "myapp",
		Logger: slog.New(slog.DiscardHandler),
		// A fixed clock keeps this example's output stable; leave it unset in real use.
		Queue: outlet.QueueConfig{Now: func() time.Time { return start.Add(time.Minute) }},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	o.Write(&aggregate.Bucket{
		Start:  start,
		Period: time.Minute,
		Series: []aggregate.Series{
			{Name: "jobs", Source: "worker.1", Kind: metric.Counter, Count: 2, Sum: 7},
			{Name: "mem", Source: "web.1", Unit: "MB", Kind: metric.Sample, Count: 1, Last: 21.5},
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := o.Close(ctx); err != nil {
		fmt.Println(err)
	}
	st := o.Stats()
	fmt.Println("sent", st.Queue.SentMeasurements, "measurements in", st.Queue.Sent, "request")
	// Output:
	// POST /v1/metrics ops@example.com
	// {"measure_time":1714564800,"gauges":[{"name":"myapp.jobs","source":"worker.1","period":60,"value":7},{"name":"myapp.mem","source":"web.1","period":60,"attributes":{"display_units_short":"MB"},"value":21.5}]}
	// sent 2 measurements in 1 request
}
