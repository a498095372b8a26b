package redact

import "net/url"

// URL returns u without its user information, query and fragment: the
// scheme, host and path, safe for errors and logs (userinfo and a query may
// carry credentials). For https://k:s@api.example.com/v1/write?key=s it
// returns https://api.example.com/v1/write.
func URL(u *url.URL) string {
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}
