package store

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
)

var updateBlobs = flag.Bool("update-blobs", false, "rewrite testdata/apps.blob")

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
		for i := range back {
			if back[i].App != states[i].App || back[i].Name != states[i].Name || back[i].Source != states[i].Source {
				t.Fatalf("state %d: re-decoded as %q %q %q, was %q %q %q", i,
					back[i].App, back[i].Name, back[i].Source, states[i].App, states[i].Name, states[i].Source)
			}
		}
	})
}

// TestCodecVersions: a blob of the previous release (testdata/three.blob:
// states without an app, version 1) decodes as single-app series with their
// values, and encodes again to the very same bytes, so that during a rolling
// upgrade an older worker decodes what an upgraded one writes in single-app
// mode; a blob of states with an app (version 2, testdata/apps.blob, written
// by this release) decodes with the apps. Run with -update-blobs to rewrite
// apps.blob after a deliberate format change.
func TestCodecVersions(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("testdata", "three.blob"))
	if err != nil {
		t.Fatal(err)
	}
	states, err := decodeStates(old)
	if err != nil {
		t.Fatal(err)
	}
	want := sampleStates(t)[:3]
	if len(states) != len(want) {
		t.Fatalf("%d states, want %d", len(states), len(want))
	}
	for i, st := range states {
		if st.App != "" || st.Series() != want[i].Series() {
			t.Errorf("state %d: app %q %+v, want no app %+v", i, st.App, st.Series(), want[i].Series())
		}
	}
	if again, err := encodeStates(nil, states); err != nil || !bytes.Equal(again, old) {
		t.Errorf("re-encoded single-app blob differs from the previous release's (%v):\n% x\n% x", err, again, old)
	}

	apps := sampleStates(t)
	for i, st := range apps {
		st.App = []string{"billing", "shop", "billing", "shop-eu-2"}[i]
	}
	blob, err := encodeStates(nil, apps)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "apps.blob")
	if *updateBlobs {
		if err := os.WriteFile(path, blob, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(blob, golden) {
		t.Errorf("the encoding of states with an app changed (run with -update-blobs if deliberate)")
	}
	got, err := decodeStates(golden)
	if err != nil || len(got) != len(apps) {
		t.Fatalf("apps.blob: %d states, %v", len(got), err)
	}
	for i, st := range got {
		if st.App != apps[i].App || st.Series() != apps[i].Series() {
			t.Errorf("apps.blob state %d: %q %+v, want %q %+v", i, st.App, st.Series(), apps[i].App, apps[i].Series())
		}
	}
}
