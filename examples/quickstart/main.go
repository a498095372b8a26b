// Command quickstart is the smallest complete app using the emitter, the one
// README.md shows: it counts and times HTTP requests and prints them as l2met
// lines on stdout, and on SIGTERM (Heroku's stop signal) or Ctrl-C it stops
// serving, then prints a final emission before it exits, so no request
// counted is lost.
//
//	$ PORT=8000 EMITTER_INTERVAL=10s go run ./examples/quickstart
//	at=metrics count#http.request.count=3 sample#http.request.min=0.01ms … count#http.requests=3
package main

import (
	"context"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dynometrics/dynometrics/emitter"
	metrics "github.com/rcrowley/go-metrics"
)

func main() {
	reg := metrics.NewRegistry()
	requests := metrics.GetOrRegisterCounter("http.requests", reg)
	latency := emitter.GetOrRegisterTimer("http.request", reg) // per-interval statistics, in ms

	cfg, err := emitter.FromEnv() // EMITTER_INTERVAL (60s), EMITTER_PREFIX, EMITTER_SOURCE, EMITTER_STATSD_ADDR, EMITTER_RUNTIME
	if err != nil {
		log.Fatal(err) // names the variable that is wrong
	}
	cfg.Registry = reg
	em, err := emitter.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	em.Start()      // emits every interval, just before each wall-clock multiple of it
	defer em.Stop() // runs last: emits once more and waits until that is written

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	port := os.Getenv("PORT") // Heroku sets it
	if port == "" {
		port = "8000"
	}
	srv := &http.Server{Addr: ":" + port, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer latency.UpdateSince(time.Now())
		requests.Inc(1)
		w.Write([]byte("hello\n"))
	})}
	go func() {
		if err := srv.ListenAndServe(); err != http.ErrServerClosed {
			log.Fatal(err)
		}
	}()
	<-ctx.Done() // SIGTERM: Heroku waits 30 s before it kills the dyno
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx) // lets running requests finish, so the final emission counts them
}
