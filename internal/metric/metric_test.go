package metric

import "testing"

// TestUnsafeText: control, format (bidirectional overrides and isolates,
// zero-width), separator characters and invalid UTF-8 are unsafe to show;
// any other script is not.
func TestUnsafeText(t *testing.T) {
	for s, want := range map[string]bool{
		"web.1": false, "héllo-wörld": false, "日本": false, "a b": false,
		"a\tb": true, "a\x7fb": true, "a\u0085b": true, "abc\u202egnp": true, "x\u2066y": true, "zero\u200bwidth": true,
		"line\u2028sep": true, "bad\xffutf8": true,
	} {
		if got := UnsafeText(s); got != want {
			t.Errorf("UnsafeText(%q) = %v, want %v", s, got, want)
		}
	}
}
