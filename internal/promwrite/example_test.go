package promwrite_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/promwrite"
)

func ExampleParseHeaders() {
	h, err := promwrite.ParseHeaders("X-Scope-OrgID:tenant1, Foo:bar")
	fmt.Println(h, err)
	_, err = promwrite.ParseHeaders("X-Scope-OrgID:tenant1,Authorization")
	fmt.Println(err)
	// Output:
	// map[Foo:bar X-Scope-Orgid:tenant1] <nil>
	// promwrite: invalid headers: entry 2: no ':' between name and value
}

func ExampleSanitizeMetricName() {
	fmt.Println(promwrite.SanitizeMetricName("us-east.prod.app_router.service"))
	fmt.Println(promwrite.SanitizeMetricName("5xx.errors"))
	// Output:
	// us_east_prod_app_router_service
	// _5xx_errors
}

// ExampleNew writes one bucket to a local receiver. Use a real endpoint, e.g.
// http://127.0.0.1:9090/api/v1/write for a Prometheus started with
// --web.enable-remote-write-receiver.
func ExampleNew() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Println(r.Header.Get("Content-Encoding"), r.Header.Get("Content-Type"),
			r.Header.Get("X-Prometheus-Remote-Write-Version"), r.Header.Get("X-Scope-OrgID"), len(body) > 0)
	}))
	defer srv.Close()

	headers, _ := promwrite.ParseHeaders("X-Scope-OrgID:tenant1")
	o, err := promwrite.New(promwrite.Config{
		URL:     srv.URL + "/api/v1/write",
		Headers: headers,
		Prefix:  "us-east.prod.app",
		Tags:    map[string]string{"app": "shop"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	o.Write(&aggregate.Bucket{
		Start:  time.Now().Truncate(time.Minute).Add(-time.Minute),
		Period: time.Minute,
		Series: []aggregate.Series{
			{Name: "requests", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 5},
			{Name: "router.service", Source: "web.1", Unit: "ms", Kind: metric.Measure,
				Count: 1, Sum: 12, Min: 12, Max: 12, Median: 12, P95: 12, P99: 12},
			{Name: "memory_rss", Source: "web.1", Unit: "MB", Kind: metric.Sample, Count: 1, Last: 21.22},
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fmt.Println(o.Close(ctx))
	st := o.Stats()
	fmt.Println(st.Series, st.Samples, st.Queue.Sent)
	// Output:
	// snappy application/x-protobuf 0.1.0 tenant1 true
	// <nil>
	// 3 9 1
}
