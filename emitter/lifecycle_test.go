package emitter

import (
	"net"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/testproc"
	metrics "github.com/rcrowley/go-metrics"
)

// TestStopWaitsForFinalEmission is the shutdown of issue 12: with a statsd
// listener, the final emission takes a while (the socket is read to the end
// and closed first). Stop must return only after it was written, holding
// every count, including statsd packets already queued on the socket.
func TestStopWaitsForFinalEmission(t *testing.T) {
	for i := range 5 {
		r := metrics.NewRegistry()
		c := metrics.GetOrRegisterCounter("http.requests", r)
		var out testproc.LimitedBuffer
		tk := newManualTicker()
		e := newTest(t, Config{Registry: r, Writer: &out, StatsdAddr: "127.0.0.1:0", NewTicker: tk.new})
		e.Start()
		c.Inc(41)
		conn, err := net.Dial("udp", e.StatsdAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte("http.requests:1|c")); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		// The packet is queued on the socket, maybe not read yet: Stop reads
		// it before the final emission.
		if err := e.Stop(); err != nil {
			t.Fatalf("run %d: Stop: %v", i, err)
		}
		if got, want := out.String(), "at=metrics count#http.requests=42\n"; got != want {
			t.Fatalf("run %d: after Stop the output is %q, want %q", i, got, want)
		}
		if err := e.Stop(); err != nil {
			t.Fatalf("second Stop: %v", err)
		}
		if got := e.Stats().Emissions; got != 1 {
			t.Fatalf("second Stop emitted again: %d emissions", got)
		}
	}
}

func TestStopWithoutStart(t *testing.T) {
	r := metrics.NewRegistry()
	metrics.GetOrRegisterCounter("x", r).Inc(1)
	var out testproc.LimitedBuffer
	e := newTest(t, Config{Registry: r, Writer: &out, StatsdAddr: "127.0.0.1:0"})
	addr := e.StatsdAddr().String()
	if err := e.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if out.String() != "" {
		t.Errorf("Stop without Start emitted %q", out.String())
	}
	// The socket is released: the address can be bound again.
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("statsd socket not released: %v", err)
	}
	c.Close()
}

func TestStartAfterRunReportsError(t *testing.T) {
	r := metrics.NewRegistry()
	tk := newManualTicker()
	e := newTest(t, Config{Registry: r, Writer: &testproc.LimitedBuffer{}, NewTicker: tk.new})
	e.Start()
	e.Start() // a second Start does nothing
	if err := e.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if n := e.Stats().Emissions; n != 1 {
		t.Errorf("%d emissions, want the final one only", n)
	}
}

func TestUntilNextTick(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := map[string]struct {
		now      string
		d        time.Duration
		want     time.Duration
		wantLead time.Duration
	}{
		"60s, mid-minute":          {"2026-12-01T14:00:30Z", time.Minute, 29 * time.Second, time.Second},
		"60s, just after the lead": {"2026-12-01T14:00:59Z", time.Minute, time.Minute, time.Second},
		"60s, in the lead":         {"2026-12-01T14:00:59.5Z", time.Minute, 59500 * time.Millisecond, time.Second},
		"10s":                      {"2026-12-01T14:00:02Z", 10 * time.Second, 7500 * time.Millisecond, 500 * time.Millisecond},
		"5s":                       {"2026-12-01T14:00:04.75Z", 5 * time.Second, 5 * time.Second, 250 * time.Millisecond},
		"7s, from the epoch":       {"1970-01-01T00:00:20Z", 7 * time.Second, 650 * time.Millisecond, 350 * time.Millisecond},
		"1h":                       {"2026-12-01T14:10:00Z", time.Hour, 49*time.Minute + 59*time.Second, time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			lead := AlignLead(tc.d)
			if lead != tc.wantLead {
				t.Fatalf("AlignLead(%v) = %v, want %v", tc.d, lead, tc.wantLead)
			}
			if got := untilNextTick(at(tc.now), tc.d, lead); got != tc.want {
				t.Errorf("untilNextTick(%s, %v) = %v, want %v", tc.now, tc.d, got, tc.want)
			}
		})
	}
}

// TestAlignedTickerTicksBeforeBoundaries runs the real ticker for a few
// short intervals and checks every tick falls just before a multiple of d.
func TestAlignedTickerTicksBeforeBoundaries(t *testing.T) {
	const d = 200 * time.Millisecond
	lead := AlignLead(d) // 10ms
	c, stop := AlignedTicker(d)
	defer stop()
	for range 3 {
		at := <-c
		late := time.Duration((at.UnixNano() + int64(lead)) % int64(d))
		// The tick is due at k·d − lead; a timer may fire late, never early.
		if late > 50*time.Millisecond && late < d-time.Millisecond {
			t.Errorf("tick at %s is %v past k·d − %v", at.Format("15:04:05.000"), late, lead)
		}
	}
	stop()
	stop() // idempotent
}
