package drain_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/input/inputtest"
)

func Example() {
	rec := inputtest.NewRecorder() // the aggregator, in the worker
	p, err := input.NewProcessor(rec, input.Config{})
	if err != nil {
		panic(err)
	}
	h, err := drain.New(p, drain.Config{User: "user", Password: "pass"})
	if err != nil {
		panic(err)
	}
	// The worker serves h with drain.NewServer(":"+port, h, 0).ListenAndServe().
	body := "92 <190>1 2024-05-01T12:00:00.200000+00:00 host app web.1 - count#req=1 measure#db.latency=4ms\n"
	r := httptest.NewRequest(http.MethodPost, "/logs", strings.NewReader(body))
	r.SetBasicAuth("user", "pass")
	r.Header.Set("Content-Type", "application/logplex-1")
	r.Header.Set("Logplex-Frame-Id", "09C557EAFCFB6CF2740EE62F62971098")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Code)

	// On SIGTERM: stop the HTTP server, then drain the queue into the sink.
	if err := h.Close(context.Background()); err != nil {
		panic(err)
	}
	for _, m := range rec.Lines() {
		fmt.Println(m)
	}
	// Output:
	// 204
	// 2024-05-01T12:00:00.2Z web.1 count req=1
	// 2024-05-01T12:00:00.2Z web.1 measure db.latency=4ms
}
