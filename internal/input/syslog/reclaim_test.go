package syslog_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/syslog"
)

// TestIdleConnectionsReclaimed is issue 13's second reproduction at its size:
// 64 idle TCP connections (no data, no auth needed) held every slot for the
// 5-minute idle timeout, and a legitimate sender got nothing through for
// 30 s. Now, with the default configuration, idle connections are closed
// while the sender waits, and its lines arrive within ReclaimIdle plus a
// little.
func TestIdleConnectionsReclaimed(t *testing.T) {
	f := start(t, syslog.Config{})
	var idle []net.Conn
	for range input.DefaultMaxConns {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	waitFor(t, func() bool { return f.srv.Stats().Active == input.DefaultMaxConns })

	began := time.Now()
	legit, err := net.Dial("tcp", f.addr) // waits in the backlog
	if err != nil {
		t.Fatal(err)
	}
	defer legit.Close()
	if _, err := io.WriteString(legit, msgA+"\n"); err != nil {
		t.Fatal(err)
	}
	if !f.rec.WaitLen(2, syslog.DefaultReclaimIdle+3*time.Second) {
		t.Fatalf("the legitimate sender got nothing through in %v; stats %+v", time.Since(began), f.srv.Stats())
	}
	took := time.Since(began)
	st := f.srv.Stats()
	if st.Reclaimed == 0 || st.ReadErrors != 0 {
		t.Errorf("stats %+v, want idle connections reclaimed and no read errors", st)
	}
	// The legitimate connection keeps its slot: it goes on delivering.
	if _, err := io.WriteString(legit, msgB+"\n"); err != nil {
		t.Fatal(err)
	}
	if !f.rec.WaitLen(3, 2*time.Second) {
		t.Fatal("second line of the legitimate sender lost")
	}
	// The reclaimed connections were closed by the server.
	idle[0].SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := idle[0].Read(make([]byte, 1)); err == nil {
		t.Error("an idle connection is still open")
	}
	t.Logf("legitimate lines through after %v; %d idle connections reclaimed", took, st.Reclaimed)
}

// TestFirstByteTimeout: a connection that sends nothing is closed after
// FirstByteTimeout and counted; one that sent a frame is then held to the
// idle timeout only.
func TestFirstByteTimeout(t *testing.T) {
	f := start(t, syslog.Config{FirstByteTimeout: 200 * time.Millisecond, IdleTimeout: time.Minute})
	silent, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	talker, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer talker.Close()
	io.WriteString(talker, msgA+"\n")
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("silent connection: read = %v, want EOF", err)
	}
	waitFor(t, func() bool { return f.srv.Stats().SilentClosed == 1 })
	time.Sleep(300 * time.Millisecond) // past the first-byte timeout of the talker too
	io.WriteString(talker, msgB+"\n")
	if !f.rec.WaitLen(3, 2*time.Second) {
		t.Fatalf("talker's second line lost: %q", f.rec.Lines())
	}
	if st := f.srv.Stats(); st.SilentClosed != 1 || st.IdleTimeouts != 0 || st.Active != 1 {
		t.Errorf("stats %+v", st)
	}
}
