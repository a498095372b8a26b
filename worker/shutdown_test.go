package main

import (
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/librato/libratotest"
	"github.com/dynometrics/dynometrics/internal/outlet"
)

// TestSlowClientDoesNotCostTheFinalBucket is issue 13's fourth
// reproduction: one client trickling a body made the HTTP server's shutdown
// use up SHUTDOWN_TIMEOUT (its ReadTimeout is longer), the outlets started
// with an expired context, and the final bucket was lost (70 of 250 lines).
// Now each stage has its own share: all 250 lines arrive, within the timeout.
func TestSlowClientDoesNotCostTheFinalBucket(t *testing.T) {
	fake := libratotest.New(t, libratotest.Options{User: testLUser, Token: testLToken})
	start := time.Now().UTC().Truncate(time.Minute)
	clock := &testClock{t: start.Add(30 * time.Second)} // the bucket is open at shutdown
	cfg := testConfig(fake.URL)
	cfg.ShutdownTimeout = 2 * time.Second // well below the drain's ReadTimeout
	url, _, stop := runWorker(t, cfg, outlet.QueueConfig{}, clock)

	for p := range 5 {
		var msgs []string
		for i := range 50 {
			msgs = append(msgs, fmt.Sprintf("<190>1 %s host app web.1 - count#req=1",
				syslogTime(start.Add(time.Duration(p*50+i)*100*time.Millisecond))))
		}
		postDrain(t, url, fmt.Sprint("f", p), frame(msgs...))
	}

	// The slow client: valid credentials, a body that trickles in.
	c, err := net.Dial("tcp", strings.TrimPrefix(strings.TrimSuffix(url, "/logs"), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /logs HTTP/1.1\r\nHost: w\r\nAuthorization: Basic %s\r\nContent-Length: 100000\r\n\r\n", basic(testUser, testPass))
	trickle := time.NewTicker(100 * time.Millisecond)
	defer trickle.Stop()
	go func() {
		for range trickle.C {
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)

	began := time.Now()
	err = stop()
	took := time.Since(began)
	if err == nil || !strings.Contains(err.Error(), "drain server: connections still open") {
		t.Errorf("run = %v, want the drain server's forced close reported", err)
	}
	got, ok := fake.Find(testPrefix+".req", "web.1")
	if !ok || got.Value != 250 {
		t.Fatalf("req = %+v (found %v), want 250: the final bucket was lost; fake errors %q", got, ok, fake.Errors())
	}
	if took > cfg.ShutdownTimeout+time.Second {
		t.Errorf("shutdown took %v, SHUTDOWN_TIMEOUT is %v", took, cfg.ShutdownTimeout)
	}
	t.Logf("shutdown took %v; run returned %v", took, err)
}

func basic(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}
