package emitter

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestStatsdScaledValueBounded is issue 13's fifth reproduction:
// hits:1|c|@5e-324 made the carried fraction NaN, and the counter showed
// -9223372036854775808 forever, the line not counted. Such lines are now
// counted and skipped, and the counter goes on counting.
func TestStatsdScaledValueBounded(t *testing.T) {
	e := newTest(t, Config{})
	e.HandleStatsd([]byte("hits:1|c|@5e-324\nbig:9007199254740992|c|@0.0000001\nhits:1|c\nbig:3|c\n" +
		"g:1e16|g\ng:9e15|g\ng:+9e15|g\nhits:0.5|c|@0.5\n"))
	if got, want := emit(t, e), "at=metrics count#big=3 sample#g=9000000000000000 count#hits=2\n"; got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	e.HandleStatsd([]byte("hits:1|c\n"))
	if got, want := emit(t, e), "at=metrics count#big=0 sample#g=9000000000000000 count#hits=1\n"; got != want {
		t.Errorf("second emission got %q\nwant %q", got, want)
	}
	if st := e.Stats().Statsd; st.OutOfRange != 4 || st.Malformed != 0 {
		t.Errorf("stats %+v, want OutOfRange 4 (two scaled counters, a gauge and a gauge delta)", st)
	}
}

// TestStatsdSetMemory: one set with 10,000 members of 60 KB grew the app
// from 8 to 578 MiB. A Set keeps a hash per member now.
func TestStatsdSetMemory(t *testing.T) {
	e := newTest(t, Config{})
	member := bytes.Repeat([]byte("x"), 60<<10)
	packet := append([]byte("big:"), member...)
	before := heapInUse()
	for i := range 10_000 {
		p := append(packet[:4:4], strconv.Itoa(i)...) // a distinct 60 KB member
		p = append(p, member...)
		p = append(p, "|s"...)
		e.HandleStatsd(p)
	}
	grown := int64(heapInUse()) - int64(before)
	if got, want := emit(t, e), "at=metrics count#big=10000\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if grown > 8<<20 {
		t.Errorf("heap grew by %d MiB for one set of 10,000 members of 60 KB", grown>>20)
	}
	t.Logf("heap grew by %d KiB", grown>>10)
}

// TestStatsdNameLimit: 300,000 timer names added 152 MiB. Names beyond
// MaxStatsdNames are counted and skipped; those registered keep working.
func TestStatsdNameLimit(t *testing.T) {
	e := newTest(t, Config{})
	before := heapInUse()
	var p []byte
	for i := range 300_000 {
		p = append(p, "timer."...)
		p = strconv.AppendInt(p, int64(i), 10)
		p = append(p, ":12|ms\n"...)
		if len(p) > 60_000 {
			e.HandleStatsd(p)
			p = p[:0]
		}
	}
	e.HandleStatsd(p)
	grown := int64(heapInUse()) - int64(before)
	if st := e.Stats().Statsd; st.NameLimit != 300_000-MaxStatsdNames {
		t.Errorf("NameLimit = %d, want %d", st.NameLimit, 300_000-MaxStatsdNames)
	}
	if grown > 32<<20 {
		t.Errorf("heap grew by %d MiB for 300,000 timer names", grown>>20)
	}
	e.HandleStatsd([]byte("timer.0:20|ms\n"))
	if out := emit(t, e); !strings.Contains(out, "sample#timer.0.max=20ms") {
		t.Errorf("a registered timer stopped working: %.300s", out)
	}
	t.Logf("heap grew by %d MiB", grown>>20)
}

// TestStatsdSetValuesShared: all sets together hold at most
// MaxStatsdSetValues values per interval; the budget returns at emission.
func TestStatsdSetValuesShared(t *testing.T) {
	e := newTest(t, Config{})
	fill := func() {
		for s := range 11 {
			var p []byte
			for i := range MaxSetSize {
				p = append(p, "set"+strconv.Itoa(s)+":"...)
				p = strconv.AppendInt(p, int64(i), 10)
				p = append(p, "|s\n"...)
				if len(p) > 60_000 {
					e.HandleStatsd(p)
					p = p[:0]
				}
			}
			e.HandleStatsd(p)
		}
	}
	for round := range 2 {
		fill()
		out := emit(t, e)
		if !strings.Contains(out, "count#set9="+strconv.Itoa(MaxSetSize)) || !strings.Contains(out, "count#set10=0") {
			t.Fatalf("round %d: %s", round, out)
		}
		if got, want := e.Stats().Statsd.SetOverflow, uint64(MaxSetSize*(round+1)); got != want {
			t.Fatalf("round %d: SetOverflow = %d, want %d", round, got, want)
		}
	}
}
