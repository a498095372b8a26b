package redact

import (
	"strings"
	"testing"
)

// BenchmarkNew builds the redactor of a Basic pair (the drain's).
func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		New("s3cr3t-drain-pw").Basic("logplex", "s3cr3t-drain-pw")
	}
}

// BenchmarkString redacts a 2 KB error body that holds no secret (the
// common case) with the drain's redactor.
func BenchmarkString(b *testing.B) {
	r := New("s3cr3t-drain-pw").Basic("logplex", "s3cr3t-drain-pw")
	body := `{"error":"invalid request","details":"` + strings.Repeat("field x is missing; ", 100) + `"}`
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		_ = r.String(body)
	}
}
