package redact

import (
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzString: whatever surrounds it, a secret of at least 4 bytes never
// survives String, raw or in its Basic form (%s and %b in text).
func FuzzString(f *testing.F) {
	f.Add("tok-9f8e7d6c5b4a", "ops@example.com", "error: %s and Basic %b")
	f.Add("p@ss:w/rd", "", "%s%s%b")
	f.Fuzz(func(t *testing.T, secret, user, text string) {
		// A secret holding '[' or ']' could be made anew across the edge of
		// a Mask ("d]ab" in "[redacted]ab"): that is text, not a leak.
		if len(secret) < 4 || strings.ContainsAny(secret, "%[]") {
			return
		}
		b := base64.StdEncoding.EncodeToString([]byte(user + ":" + secret))
		in := strings.NewReplacer("%s", secret, "%b", b).Replace(text)
		got := New(secret).Basic(user, secret).String(in)
		if strings.Contains(got, secret) || strings.Contains(got, b) {
			t.Fatalf("String(%q) = %q holds the secret %q", in, got, secret)
		}
	})
}
