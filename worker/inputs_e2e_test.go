package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/librato/libratotest"
	"github.com/dynometrics/dynometrics/internal/outlet"
)

// freeAddr returns a 127.0.0.1 address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// fakePlatformAPI answers log-session creation for app "myapp" with key
// "heroku-secret-key", and streams lines on the first stream request only
// (later sessions, after a reconnect, stream nothing), holding each stream
// open until the client goes away.
func fakePlatformAPI(t *testing.T, lines string) (url string, sessions *atomic.Int32) {
	t.Helper()
	sessions = new(atomic.Int32)
	var streams atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/apps/myapp/log-sessions":
			if r.Header.Get("Authorization") != "Bearer heroku-secret-key" || r.Header.Get("Accept") != "application/vnd.heroku+json; version=3" {
				http.Error(w, `{"id":"unauthorized"}`, http.StatusUnauthorized)
				return
			}
			sessions.Add(1)
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"logplex_url":%q}`, srv.URL+"/stream?srv=1&sig=secret")
		case r.Method == http.MethodGet && r.URL.Path == "/stream":
			w.Header().Set("Content-Type", "text/plain")
			if streams.Add(1) == 1 {
				fmt.Fprint(w, lines)
			}
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, sessions
}

// TestAllInputsOnePipeline runs the worker with its three network inputs at
// once — the HTTP drain, a syslog listener and a Platform API log session —
// and checks that each one's lines reach Librato through the one aggregator.
func TestAllInputsOnePipeline(t *testing.T) {
	fake := libratotest.New(t, libratotest.Options{User: testLUser, Token: testLToken})
	start := time.Now().UTC().Truncate(time.Minute).Add(-2 * time.Minute)
	apiURL, sessions := fakePlatformAPI(t, syslogTime(start.Add(20*time.Second))+" app[web.4]: count#jobs.enqueued=2 sample#queue.depth=4\n")

	cfg := testConfig(fake.URL)
	cfg.Syslog.Addr = freeAddr(t)
	cfg.LogSession.APIKey, cfg.LogSession.App, cfg.LogSession.BaseURL = "heroku-secret-key", "myapp", apiURL
	clock := &testClock{t: start.Add(40 * time.Second)}
	url, wk, stop := runWorker(t, cfg, outlet.QueueConfig{}, clock)

	postDrain(t, url, "drain-1", frame(drainMessages(t, start)...))
	var conn net.Conn
	waitFor(t, "the syslog listener", 5*time.Second, func() bool {
		c, err := net.Dial("tcp", cfg.Syslog.Addr)
		conn = c
		return err == nil
	})
	defer conn.Close()
	// An RFC 5424 syslog drain message with STRUCTURED-DATA, octet counted,
	// the drain token as HOSTNAME.
	msg := "<190>1 " + syslogTime(start.Add(21*time.Second)) + " d.9f2b61c4 app web.3 - [meta seq=\"1\"] count#jobs.enqueued=5"
	if _, err := fmt.Fprintf(conn, "%d %s", len(msg), msg); err != nil {
		t.Fatal(err)
	}
	lines := uint64(len(drainMessages(t, start)) + 2)
	waitFor(t, "every input's lines to be parsed", 10*time.Second, func() bool { return wk.proc.Stats().Lines == lines })
	clock.Set(start.Add(time.Minute + 2*time.Second))

	wants := append(drainWants(),
		gauge("jobs.enqueued", "web.3", 5, ""),
		gauge("jobs.enqueued", "web.4", 2, ""),
		gauge("queue.depth", "web.4", 4, ""),
	)
	waitFor(t, "every measurement at the fake", 10*time.Second, func() bool { return len(fake.Measurements()) >= len(wants) })
	if err := stop(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	checkAccepted(t, fake.Measurements(), wants, start)
	if n := sessions.Load(); n < 1 {
		t.Errorf("log sessions created: %d", n)
	}
	if got := wk.syslog.Stats().Accepted; got != 1 {
		t.Errorf("syslog connections accepted: %d, want 1", got)
	}
}
