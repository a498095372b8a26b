package syslog_test

import (
	"io"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/input/syslog"
)

// TestSingleFrameLatency sends one frame on a connection that then stays open
// and quiet: its measurements must reach the sink without waiting for a
// second frame, the idle timeout or Close.
func TestSingleFrameLatency(t *testing.T) {
	tests := map[string]string{
		"octet counted with LF (Heroku)":      strconv.Itoa(len(msgA)+1) + " " + msgA + "\n",
		"octet counted without LF (RFC 6587)": frame(msgA),
		"newline delimited":                   msgA + "\n",
	}
	for name, write := range tests {
		t.Run(name, func(t *testing.T) {
			// An idle timeout far beyond the deadline: only the frame itself
			// can deliver the measurements in time.
			f := start(t, syslog.Config{IdleTimeout: time.Hour})
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, write); err != nil {
				t.Fatal(err)
			}
			if !f.rec.WaitLen(len(wantA), 5*time.Second) {
				t.Fatalf("after 5s on an open connection the sink has %q, want %q", f.rec.Lines(), wantA)
			}
			if got := f.rec.Lines(); !slices.Equal(got, wantA) {
				t.Errorf("got %q, want %q", got, wantA)
			}
			if st := f.srv.Stats(); st.Active != 1 || st.IdleTimeouts != 0 {
				t.Errorf("stats = %+v, want the connection still open", st)
			}
		})
	}
}
