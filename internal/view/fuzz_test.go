package view

import (
	"encoding/json"
	"testing"
)

// FuzzAppendString: metric names and sources come from log lines, so any
// bytes; the API must still be valid JSON that decodes to the same text
// (each byte of invalid UTF-8 as U+FFFD).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"web.1", "", `"\`, "\x00\x1f\x7f", "<&>", "\u2028", "\xff\xfe", "ü\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString([]byte("["), s)
		b = append(b, ']')
		if !json.Valid(b) {
			t.Fatalf("appendString(%q) = %s: not valid JSON", s, b)
		}
		var got []string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		// Each invalid byte becomes U+FFFD, as encoding/json and []rune do.
		if want := string([]rune(s)); len(got) != 1 || got[0] != want {
			t.Fatalf("appendString(%q) decodes to %q, want %q", s, got, want)
		}
	})
}
