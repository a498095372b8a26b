package drain

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serveRaw starts a Server for h with the given body timeout and returns
// its address.
func serveRaw(t *testing.T, h http.Handler, bodyTimeout time.Duration) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer("", h, 0)
	s.bodyTimeout = bodyTimeout
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return l.Addr().String()
}

// TestBodyTimeoutWhateverTheSize: a client with valid credentials that
// stalls its body is cut BodyTimeout after its headers, for a small and a
// large declared size alike; the handler sees a read error.
func TestBodyTimeoutWhateverTheSize(t *testing.T) {
	readErr := make(chan error, 1)
	addr := serveRaw(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
	}), 300*time.Millisecond)
	for _, size := range []int{100, 4 << 20} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		fmt.Fprintf(c, "POST /logs HTTP/1.1\r\nHost: d\r\nContent-Length: %d\r\n\r\nabc", size)
		select {
		case err := <-readErr:
			took := time.Since(start)
			if err == nil || took < 250*time.Millisecond || took > 2*time.Second {
				t.Errorf("declared %d bytes, stalled: read ended after %v with %v; want a timeout after about 300ms", size, took, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("declared %d bytes, stalled: body still being read after 5 s", size)
		}
		c.Close()
	}
}

// TestAnswerBeforeBodyEndsRead: an answer written before the body was read
// (here a 401) reaches the client at once and closes the connection, while
// the client still trickles; an answer after the whole body keeps the
// connection open.
func TestAnswerBeforeBodyEndsRead(t *testing.T) {
	addr := serveRaw(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/read" {
			_, _ = io.ReadAll(r.Body)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		http.Error(w, "no", http.StatusUnauthorized)
	}), 10*time.Second)

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	fmt.Fprintf(c, "POST /read HTTP/1.1\r\nHost: d\r\nContent-Length: 5\r\n\r\nhello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusNoContent || resp.Close {
		t.Fatalf("body read: %v, %+v; want 204 on a kept connection", err, resp)
	}
	start := time.Now()
	fmt.Fprintf(c, "POST /deny HTTP/1.1\r\nHost: d\r\nContent-Length: 200000\r\n\r\nx")
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !resp.Close {
		t.Fatalf("unread body: %v, %+v; want 401 with Connection: close", err, resp)
	}
	rest, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("401 came after %v, want at once", d)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if b, err := br.ReadByte(); err != io.EOF && !strings.Contains(fmt.Sprint(err), "reset") {
		t.Errorf("after the 401 (body %q) the connection gave %q, %v; want it closed", rest, b, err)
	}
}
