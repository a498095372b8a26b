package store

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/store/redistest"
)

// TestClientNeverRepeatsACommand: a command whose reply was lost may have
// run, so the client must hand the error to the Store, never send the
// command again by itself. The Frame-Id check is where it shows: a SET NX
// sent again after its first run answers "already set", and the body
// would be dropped as a duplicate of itself, answered 204. A proxy in front
// of a real redis-server forwards the first check, lets Redis run it, and
// cuts the connection before the reply. With go-redis' MaxRetries=0 ("3
// retries") FrameSeen said "seen"; it must say "not seen" with an error.
func TestClientNeverRepeatsACommand(t *testing.T) {
	srv := redistest.Start(t)
	proxy := cutFirst(t, srv.Addr, []byte("frame-to-cut"))
	s, err := Open(Config{URL: "redis://" + proxy + "/0", Resolution: res, ID: "a",
		Outlets: []string{"librato"}, Deliver: (&recorder{}).deliver("librato"), OpTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dup, err := s.FrameSeen(context.Background(), "", "frame-to-cut", time.Minute)
	if dup || err == nil {
		t.Fatalf("FrameSeen with its reply cut = %v, %v; want not seen and an error (the body is kept)", dup, err)
	}
	runs := func() string {
		got, err := srv.Do("DBSIZE")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for deadline := time.Now().Add(2 * time.Second); runs() == "0" && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runs(); n != "1" {
		t.Fatalf("Redis holds %s keys after one check, want 1: the check never ran", n)
	}
}

// cutFirst starts a TCP proxy to addr on 127.0.0.1 and returns its address.
// The first connection whose client bytes contain marker is closed 100 ms
// after those bytes are forwarded, before Redis's reply is passed back.
func cutFirst(t *testing.T, addr string, marker []byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var cut atomic.Bool
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { // Redis → client, held back once the cut is decided
				defer wg.Done()
				io.Copy(c, s)
				c.Close()
			}()
			go func() {
				defer wg.Done()
				defer s.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if bytes.Contains(buf[:n], marker) && cut.CompareAndSwap(false, true) {
							c.Close() // no reply reaches the client
							s.Write(buf[:n])
							time.Sleep(100 * time.Millisecond) // Redis runs it
							return
						}
						if _, err := s.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
