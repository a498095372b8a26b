// Package redact removes secrets from text that came from elsewhere before it
// reaches a log or an error: a receiver's error body that echoes the request's
// Authorization header, a peer's message, a URL. It is the one redactor every
// outlet and input uses, so that each secret is removed in every form it can
// travel in:
//
//   - raw:             tok-9f8e7d6c5b4a
//   - Basic auth:      Basic b3BzQGV4YW1wbGUuY29tOnRvay05ZjhlN2Q2YzViNGE= (base64 of user:secret)
//   - bearer:          Bearer tok-9f8e7d6c5b4a
//   - URL userinfo:    https://ops%40example.com:tok-9f8e7d6c5b4a@host/ (and percent-encoded)
//   - JSON-escaped:    "tok\/9f8e" (a receiver quoting it in a JSON body)
//
// Known secrets are replaced in each of these forms; independently of them,
// the credentials of any "Basic …" or "Bearer …" word and any URL userinfo
// are replaced too, so a secret the redactor was not told about (another
// header, a rotated key) does not pass either.
//
//	r := redact.New(token).Basic(user, token)
//	log.Warn("refused", "body", r.String(body))
package redact

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Mask is what every secret is replaced with.
const Mask = "[redacted]"

// Redactor replaces secrets in text. The zero value and nil redact only the
// generic forms (any Basic or Bearer credentials, any URL userinfo). Safe for
// concurrent use once built.
type Redactor struct {
	olds []string
	rep  *strings.Replacer
}

// New returns a Redactor for secrets (empty ones are ignored), each in its
// raw, percent-encoded, JSON-escaped and base64 forms.
func New(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		r.add(s)
	}
	return r.build()
}

// Basic returns a Redactor that also removes the Basic auth credentials of
// user and password (base64 of "user:password" in the standard, unpadded and
// URL alphabets) and password alone in all its forms. The user is not
// considered secret by itself.
func (r *Redactor) Basic(user, password string) *Redactor {
	out := &Redactor{olds: slices.Clone(r.olds)}
	if password != "" || user != "" {
		pair := user + ":" + password
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			out.olds = append(out.olds, enc.EncodeToString([]byte(pair)))
		}
		if password != "" {
			out.olds = append(out.olds, url.UserPassword(user, password).String())
		}
	}
	out.add(password)
	return out.build()
}

func (r *Redactor) add(s string) {
	if s == "" {
		return
	}
	forms := []string{s, url.QueryEscape(s), url.PathEscape(s), base64.StdEncoding.EncodeToString([]byte(s)),
		base64.RawStdEncoding.EncodeToString([]byte(s)), base64.URLEncoding.EncodeToString([]byte(s))}
	// Quoted in JSON (with and without HTML escaping, "/" escaped or not)
	// and in Go syntax.
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	j, _ := json.Marshal(s)
	for _, q := range []string{strings.TrimSpace(b.String()), string(j), strconv.Quote(s)} {
		q = q[1 : len(q)-1]
		forms = append(forms, q, strings.ReplaceAll(q, "/", `\/`))
	}
	r.olds = append(r.olds, forms...)
}

func (r *Redactor) build() *Redactor {
	slices.SortFunc(r.olds, func(a, b string) int { return cmp.Compare(len(b), len(a)) }) // longest first
	r.olds = slices.Compact(r.olds)
	pairs := make([]string, 0, 2*len(r.olds))
	for _, o := range r.olds {
		pairs = append(pairs, o, Mask)
	}
	r.rep = strings.NewReplacer(pairs...)
	return r
}

var (
	// authCredentials matches the credentials of an Authorization value.
	authCredentials = regexp.MustCompile(`(?i)\b(basic|bearer)(\s+|%20|\+)[A-Za-z0-9+/=._~%-]{8,}`)
	// userinfo matches the userinfo of a URL.
	userinfo = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s@"'<>]+@`)
)

// String returns s with every known secret, in each of its forms, and any
// Basic or Bearer credentials and URL userinfo replaced by Mask.
func (r *Redactor) String(s string) string {
	if r != nil && r.rep != nil {
		s = r.rep.Replace(s)
	}
	s = authCredentials.ReplaceAllString(s, "${1} "+Mask)
	return userinfo.ReplaceAllString(s, "${1}"+Mask+"@")
}

// Error returns err with its message redacted as String does. It keeps
// err's chain for errors.Is and errors.As; only Error() changes. nil stays nil.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := r.String(msg)
	if red == msg {
		return err
	}
	return &redacted{msg: red, err: err}
}

type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }
