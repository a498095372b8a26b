package input_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/input"
)

func TestLimitListener(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ll := input.NewLimitListener(l, 1)
	defer ll.Close()

	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ll.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	c1, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	s1 := <-accepted
	c2, err := net.Dial("tcp", l.Addr().String()) // waits in the kernel backlog
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	select {
	case <-accepted:
		t.Fatal("second connection accepted while the first is open")
	case <-time.After(100 * time.Millisecond):
	}
	if got := ll.Stats(); got != (input.ListenerStats{Accepted: 1, Saturated: 1, Active: 1}) {
		t.Errorf("stats = %+v", got)
	}
	s1.Close()
	s1.Close() // a second Close must not free a second slot
	select {
	case s2 := <-accepted:
		defer s2.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("second connection not accepted after the first closed")
	}
	if got := ll.Stats(); got.Accepted != 2 || got.Active != 1 {
		t.Errorf("stats = %+v", got)
	}
	// Close wakes an Accept waiting for a slot.
	ll.Close()
	if _, ok := <-accepted; ok {
		t.Error("Accept returned a connection after Close")
	}
	if _, err := ll.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
	}
}

func TestLimitListenerDefault(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ll := input.NewLimitListener(l, 0)
	defer ll.Close()
	if got := ll.Limit(); got != input.DefaultMaxConns {
		t.Errorf("default limit = %d, want %d", got, input.DefaultMaxConns)
	}
}
