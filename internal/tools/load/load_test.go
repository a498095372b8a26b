package load

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestLoaderRetries503WithTheSameFrameID: every body is refused once (503),
// then accepted under the same Frame-Id; Max bounds the bodies, the
// credentials of the URL become Basic auth, and OK hears of every body.
func TestLoaderRetries503WithTheSameFrameID(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "p" || r.Header.Get("Logplex-Msg-Count") != "3" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		id := r.Header.Get("Logplex-Frame-Id")
		mu.Lock()
		seen[id]++
		n := seen[id]
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	oks := 0
	l := &Loader{URLs: []string{"http://u:p@" + srv.Listener.Addr().String()}, Conns: 3, Max: 10,
		Body: func(n int64, buf []byte) ([]byte, int) { return append(buf[:0], "x"...), 3 },
		OK: func(int64) {
			mu.Lock()
			defer mu.Unlock()
			oks++
		}}
	c := l.Run(context.Background())
	if c.Posts != 10 || c.Lines != 30 || c.Refused != 10 || c.Failed != 0 || c.ErrRetries != 0 || oks != 10 {
		t.Errorf("counts %+v, OK called %d times", c, oks)
	}
	if len(seen) != 10 {
		t.Errorf("%d Frame-Ids, want 10: %v", len(seen), seen)
	}
	for id, n := range seen {
		if n != 2 || len(id) != 32 {
			t.Errorf("Frame-Id %q posted %d times", id, n)
		}
	}
	// A second Run goes on with new Frame-Ids.
	if c := l.Run(context.Background()); c.Posts != 10 || len(seen) != 20 {
		t.Errorf("second run: %+v, %d Frame-Ids", c, len(seen))
	}
}

// TestLoaderPaced: at a rate, Run sends no faster than asked and stops with
// its context; a 400 is given up on, not retried.
func TestLoaderPaced(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer srv.Close()
	l := &Loader{URLs: []string{srv.URL}, Conns: 2, Rate: 20,
		Body: func(int64, []byte) ([]byte, int) { return []byte("x"), 1 }}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	c := l.Run(ctx)
	if c.Posts != 0 || c.Failed < 5 || c.Failed > 12 || c.Refused != 0 {
		t.Errorf("counts %+v, want about 10 failed", c)
	}
}

// TestMixedBodies: the bodies are Logplex frames of the asked lines.
func TestMixedBodies(t *testing.T) {
	for i, b := range MixedBodies(3, 20) {
		if n := bytes.Count(b, []byte("\n")); n != 20 || !bytes.Contains(b, []byte(" <190>1 ")) {
			t.Errorf("body %d: %d lines: %.40q", i, n, b)
		}
	}
}
