package otlp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/otlp"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// A Fir telemetry drain posts a log record from a dyno; its body holds l2met
// pairs. The Receiver answers 200 at once and hands the measurements to its
// Sink (the aggregator, in the worker) from its own goroutine.
func Example() {
	var mu sync.Mutex
	var got []string
	sink := input.SinkFunc(func(ms []metric.Measurement) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ms {
			got = append(got, fmt.Sprintf("%s %s %v%s source=%s", m.Kind, m.Name, m.Value, m.Unit, m.Source))
		}
	})
	r, err := otlp.New(otlp.Config{Sink: sink, User: "drain", Password: "s3cret",
		SourceAttributes: []string{"heroku.dyno.name"}, DynoNames: otlp.DynoType})
	if err != nil {
		panic(err)
	}
	body := `{"resourceLogs":[{"resource":{"attributes":[
	  {"key":"heroku.dyno.name","value":{"stringValue":"web-5d8f7c9b4-x2k9p"}}]},
	  "scopeLogs":[{"logRecords":[{"timeUnixNano":"1714564800123456000",
	    "body":{"stringValue":"count#req=1 measure#db.latency=4ms"}}]}]}]}`
	req := httptest.NewRequest(http.MethodPost, otlp.LogsPath, strings.NewReader(body))
	req.SetBasicAuth("drain", "s3cret")
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	fmt.Println(w.Code, w.Body.String())
	_ = r.Close(context.Background()) // waits until the queued request reached the sink
	mu.Lock()
	fmt.Println(strings.Join(got, "\n"))
	mu.Unlock()
	// Output:
	// 200 {}
	// count req 1 source=web
	// measure db.latency 4ms source=web
}

// A Fir dyno's name changes on every deploy; its process type does not.
func ExampleProcessType() {
	fmt.Println(otlp.ProcessType("web-5d8f7c9b4-x2k9p"))
	fmt.Println(otlp.ProcessType("worker-7f6e5d4c3-ab12c"))
	fmt.Println(otlp.ProcessType("web.1")) // a Cedar dyno: unchanged
	// Output:
	// web
	// worker
	// web.1
}
