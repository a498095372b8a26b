package decimal

import (
	"math"
	"strconv"
	"testing"
)

func TestPrefix(t *testing.T) {
	for _, tc := range []struct {
		in string
		v  float64
		n  int
		ok bool
	}{
		{"21.22MB", 21.22, 5, true},
		{"0.25|ms", 0.25, 4, true},
		{"-3", -3, 2, true},
		{"+7.", 7, 3, true},
		{".5s", 0.5, 2, true},
		{"1e3x", 1000, 3, true},
		{"1E-2", 0.01, 4, true},
		{"2e", 2, 1, true},                                   // an exponent without digits is not read
		{"123456789012345678", 123456789012345678, 18, true}, // past 15 digits: strconv
		{"1e400", math.Inf(1), 5, false},                     // read, but not finite
		{"", 0, 0, false},
		{"-", 0, 0, false},
		{".", 0, 0, false},
		{"ms", 0, 0, false},
	} {
		v, n, ok := Prefix([]byte(tc.in))
		if n != tc.n || ok != tc.ok || (ok && v != tc.v) {
			t.Errorf("Prefix(%q) = %v, %d, %v; want %v, %d, %v", tc.in, v, n, ok, tc.v, tc.n, tc.ok)
		}
	}
}

// FuzzPrefix checks that whatever Prefix reads equals strconv.ParseFloat of
// the same bytes.
func FuzzPrefix(f *testing.F) {
	for _, s := range []string{"21.22MB", "-0.001", "1e22", "9007199254740993", "0.1e-5", "+.5"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, n, ok := Prefix(b)
		if n == 0 {
			return
		}
		if n > len(b) {
			t.Fatalf("Prefix(%q) read %d bytes", b, n)
		}
		want, err := strconv.ParseFloat(string(b[:n]), 64)
		finite := err == nil && !math.IsInf(want, 0)
		if ok != finite || (ok && v != want) {
			t.Fatalf("Prefix(%q) = %v, %d, %v; strconv.ParseFloat(%q) = %v, %v", b, v, n, ok, b[:n], want, err)
		}
	})
}

func BenchmarkPrefix(b *testing.B) {
	in := []byte("21.22MB")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := Prefix(in); !ok {
			b.Fatal("not read")
		}
	}
}
