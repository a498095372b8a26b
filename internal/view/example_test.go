package view_test

import (
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/view"
)

// The worker hands every flushed bucket to History.Write and serves
// History.Handler; here one bucket of two dynos, then the API's answer.
func Example() {
	h, err := view.New(view.Config{Resolution: time.Minute})
	if err != nil {
		panic(err)
	}
	h.Write(&aggregate.Bucket{
		Start:  time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		Period: time.Minute,
		Series: []aggregate.Series{
			{Name: "memory_rss", Source: "web.1", Unit: "MB", Kind: metric.Sample, Count: 3, Last: 210.5},
			{Name: "memory_rss", Source: "web.2", Unit: "MB", Kind: metric.Sample, Count: 3, Last: 189.5},
		},
	})
	rec := httptest.NewRecorder()
	h.Handler(view.HandlerConfig{}).ServeHTTP(rec, httptest.NewRequest("GET", "/api/series?name=memory_rss", nil))
	fmt.Print(rec.Body.String())
	// Output:
	// {"name":"memory_rss","kind":"sample","unit":"MB","stat":"last","resolution":60,"latest":1796119200,"version":1,"series":[{"source":"*","last":1796119200,"ended":false,"points":[[1796119200,200]]},{"source":"web.1","last":1796119200,"ended":false,"points":[[1796119200,210.5]]},{"source":"web.2","last":1796119200,"ended":false,"points":[[1796119200,189.5]]}]}
}
