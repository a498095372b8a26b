package envcfg

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// The checks below return an *Error naming the variable, or nil.

// Port checks a TCP port number, 1 to 65535.
func Port(name, p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return Bad(name, "not a port number")
	}
	return nil
}

var hostname = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)

// ListenAddr checks host:port or :port, the host an IP address or a name.
func ListenAddr(name, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return Bad(name, "not host:port")
	}
	if host != "" && Host(name, host) != nil {
		return Bad(name, "host %q is neither an IP address nor a host name", host)
	}
	return Port(name, port)
}

// Host checks an IP address or a host name.
func Host(name, host string) error {
	if net.ParseIP(host) == nil && !hostname.MatchString(host) {
		return Bad(name, "neither an IP address nor a host name")
	}
	return nil
}

// NoneOf checks that s holds none of chars.
func NoneOf(name, s, chars string) error {
	if i := strings.IndexAny(s, chars); i >= 0 {
		return Bad(name, "contains %q", s[i])
	}
	return nil
}

// File checks that path names a readable file.
func File(name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return Bad(name, "cannot be read")
	}
	f.Close()
	return nil
}

// URL checks an absolute http(s) URL with a host and no credentials; a base
// URL (base true) has no query or fragment either. Its problems never quote
// the URL, which may carry a secret.
func URL(name, s string, base bool) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return Bad(name, "not a URL") // url.Parse's error quotes the input
	case u.Scheme != "http" && u.Scheme != "https":
		if u.Scheme == "" || u.Opaque != "" {
			return Bad(name, "no http:// or https:// in front")
		}
		return Bad(name, "scheme %q is not http or https", u.Scheme)
	case u.Host == "":
		return Bad(name, "no host")
	case u.User != nil:
		return Bad(name, "credentials in the URL: use the variables for them")
	case base && (u.RawQuery != "" || u.Fragment != ""):
		return Bad(name, "a base URL has no query or fragment")
	}
	return nil
}

// Together reports one of two variables that go together set without the
// other; why says what they are for.
func Together(a, av, b, bv, why string) error {
	switch {
	case av != "" && bv == "":
		return fmt.Errorf("%s is set but %s is not: they go together %s", a, b, why)
	case av == "" && bv != "":
		return fmt.Errorf("%s is set but %s is not: they go together %s", b, a, why)
	}
	return nil
}
