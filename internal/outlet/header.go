package outlet

import "strings"

// ValidHeaderName reports whether s is a valid HTTP header name: an RFC 9110
// token (letters, digits and !#$%&'*+-.^_`|~). The outlets check the header
// names users configure (REMOTE_WRITE_HEADERS, OTEL_EXPORTER_OTLP_HEADERS)
// with it, so that a typo is a clear configuration error, not a failed
// request.
func ValidHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}
