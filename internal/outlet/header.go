package outlet

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ValidHeaderName reports whether s is a valid HTTP header name: an RFC 9110
// token (letters, digits and !#$%&'*+-.^_`|~). The outlets check the header
// names users configure (REMOTE_WRITE_HEADERS, OTEL_EXPORTER_OTLP_HEADERS)
// with it, so that a typo is a clear configuration error, not a failed
// request.
func ValidHeaderName(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c))
	})
}

// CheckHeaders refuses, in name order, a configured header whose name is not
// an HTTP token, whose value holds a line break or NUL, or that the protocol
// sets itself: Content-Type, Content-Encoding, Content-Length, Host, and
// those in reserved (compared ignoring case). Its errors never quote a value.
func CheckHeaders(h map[string]string, reserved ...string) error {
	reserved = append([]string{"Content-Type", "Content-Encoding", "Content-Length", "Host"}, reserved...)
	for _, name := range slices.Sorted(maps.Keys(h)) {
		if !ValidHeaderName(name) {
			return fmt.Errorf("header name %q is not a valid HTTP token", name)
		}
		if strings.ContainsAny(h[name], "\r\n\x00") {
			return fmt.Errorf("header %s: value contains a line break or NUL", name)
		}
		if slices.ContainsFunc(reserved, func(r string) bool { return strings.EqualFold(name, r) }) {
			return fmt.Errorf("header %s is set by the protocol", name)
		}
	}
	return nil
}
