package jsonappend

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestEncodingJSONAgrees(t *testing.T) {
	for _, s := range []string{"web.1", "", `a"b\c`, "tab\tnew\nline\x01", "<script>&", "ünï©ødé", "bad\xffutf8", "\u2028\u2029"} {
		var got string
		if err := json.Unmarshal(String(nil, s), &got); err != nil {
			t.Errorf("String(%q) = %s: %v", s, String(nil, s), err)
			continue
		}
		if want := strings.ToValidUTF8(s, "\ufffd"); got != want {
			t.Errorf("String(%q) decodes to %q", s, got)
		}
	}
	for _, v := range []float64{0, 1, -1.25, 1e-7, 123456789012345678901234.0, 0.1, 5e-324, math.MaxFloat64} {
		var got float64
		b := Float(nil, v)
		if err := json.Unmarshal(b, &got); err != nil || got != v {
			t.Errorf("Float(%v) = %s → %v %v", v, b, got, err)
		}
		if want, _ := json.Marshal(v); string(want) != string(b) {
			t.Errorf("Float(%v) = %s, encoding/json writes %s", v, b, want)
		}
	}
}

// FuzzString: metric names and sources come from log lines, so any
// bytes; the API must still be valid JSON that decodes to the same text
// (each byte of invalid UTF-8 as U+FFFD).
func FuzzString(f *testing.F) {
	for _, s := range []string{"web.1", "", `"\`, "\x00\x1f\x7f", "<&>", "\u2028", "\xff\xfe", "ü\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := String([]byte("["), s)
		b = append(b, ']')
		if !json.Valid(b) {
			t.Fatalf("String(%q) = %s: not valid JSON", s, b)
		}
		var got []string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		// Each invalid byte becomes U+FFFD, as encoding/json and []rune do.
		if want := string([]rune(s)); len(got) != 1 || got[0] != want {
			t.Fatalf("String(%q) decodes to %q, want %q", s, got, want)
		}
	})
}
