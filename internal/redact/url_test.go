package redact_test

import (
	"net/url"
	"testing"

	"github.com/dynometrics/dynometrics/internal/redact"
)

func TestURL(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"userinfo and query": {"https://k:s3cret@api.example.com/v1/write?key=s3cret#frag", "https://api.example.com/v1/write"},
		"escaped path":       {"http://127.0.0.1:9090/a%20b/write", "http://127.0.0.1:9090/a%20b/write"},
		"no path":            {"https://otlp.example.com?api-key=s3cret", "https://otlp.example.com"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			u, err := url.Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := redact.URL(u); got != tt.want {
				t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
