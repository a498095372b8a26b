package store

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
)

func sampleStates(t testing.TB) []*aggregate.State {
	t.Helper()
	var out []*aggregate.State
	for i, k := range []metric.Kind{metric.Counter, metric.Sample, metric.Measure} {
		st := aggregate.NewState("n", "web."+string(rune('1'+i)), "ms", k)
		for v := range 5 {
			st.Add(time.Unix(int64(v), 0), float64(v))
		}
		out = append(out, st)
	}
	big := aggregate.NewState("big", "web.1", "", metric.Measure)
	for v := range aggregate.ExactLimit + 10 {
		big.Add(time.Unix(0, 0), float64(v))
	}
	return append(out, big)
}

func TestCodecRoundTrip(t *testing.T) {
	states := sampleStates(t)
	data, err := encodeBucket(1_700_000_000, 60, states)
	if err != nil {
		t.Fatal(err)
	}
	start, period, got, err := decodeBucket(data)
	if err != nil || start != 1_700_000_000 || period != 60 || len(got) != len(states) {
		t.Fatalf("decode: %d %d %d states, %v", start, period, len(got), err)
	}
	for i := range states {
		if a, b := states[i].Series(), got[i].Series(); a != b {
			t.Errorf("state %d: %+v != %+v", i, a, b)
		}
	}
	for _, bad := range [][]byte{nil, {9}, data[:len(data)-1], append(bytes.Clone(data), 0)} {
		if _, _, _, err := decodeBucket(bad); err == nil {
			t.Errorf("decodeBucket(%d bytes) accepted", len(bad))
		}
	}
}

// FuzzDecodeStates: a blob read from Redis (which anyone with its URL can
// write) never panics, and what decodes re-encodes to a blob that decodes
// to the same statistics.
func FuzzDecodeStates(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.blob"))
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		states, err := decodeStates(b)
		if err != nil {
			return
		}
		again, err := encodeStates(nil, states)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeStates(again)
		if err != nil || len(back) != len(states) {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
