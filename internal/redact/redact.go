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
//   - JSON-escaped:    "tok\/9f8e", "tok\u002d9f8e" (a receiver quoting it in a JSON body)
//   - any mix:         each character raw or escaped (JSON, URL, \xXX, HTML), hex digits in any case
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
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Mask is what every secret is replaced with.
const Mask = "[redacted]"

// Redactor replaces secrets in text. The zero value and nil redact only the
// generic forms (any Basic or Bearer credentials, any URL userinfo). Safe for
// concurrent use once built.
type Redactor struct {
	forms []string // the secrets and their encoded forms, ASCII lower-cased, longest first
}

// New returns a Redactor for secrets (empty ones are ignored), each raw and
// in base64, and each of those with any of its characters escaped as a
// receiver may echo it: JSON (\/, \uXXXX, \"), URL (%XX, + for a space), Go
// and C (\xXX), HTML (&#NN; &#xXX;), with hexadecimal digits and letters in
// any case.
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
	out := &Redactor{forms: slices.Clone(r.forms)}
	if password != "" || user != "" {
		out.addBase64(user + ":" + password)
		if password != "" {
			out.addEncoded(url.UserPassword(user, password).String())
		}
	}
	out.add(password)
	return out.build()
}

func (r *Redactor) add(s string) {
	if s == "" {
		return
	}
	r.addEncoded(s)
	r.addBase64(s)
}

// addBase64 adds s in base64, standard and URL alphabets, padded or not.
func (r *Redactor) addBase64(s string) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		r.addEncoded(enc.EncodeToString([]byte(s)))
	}
}

// addEncoded adds s, and s URL-encoded (query and path) and JSON-quoted
// (with and without HTML escaping) as a whole: what a receiver echoes
// after encoding it once, before it may escape characters of that again.
func (r *Redactor) addEncoded(s string) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	j, _ := json.Marshal(s)
	r.forms = append(r.forms, s, url.QueryEscape(s), url.PathEscape(s),
		strings.TrimSpace(b.String())[1:len(strings.TrimSpace(b.String()))-1], string(j[1:len(j)-1]))
}

func (r *Redactor) build() *Redactor {
	for i, f := range r.forms {
		r.forms[i] = lowerASCII(f)
		if strings.Contains(f, " ") {
			r.forms = append(r.forms, lowerASCII(strings.ReplaceAll(f, " ", "+")))
		}
	}
	slices.SortFunc(r.forms, func(a, b string) int { // longest first
		return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b))
	})
	r.forms = slices.Compact(r.forms)
	return r
}

// lowerASCII lower-cases the letters of s whose lower case has the same
// UTF-8 length (all ASCII letters, most others), so that byte offsets stay
// the same.
func lowerASCII(s string) string {
	b := []byte(s)
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				b[i] = c + 'a' - 'A'
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if l := unicode.ToLower(r); l != r && utf8.RuneLen(l) == n {
			utf8.EncodeRune(b[i:], l)
		}
		i += n
	}
	return string(b)
}

// replaceForms replaces every form found in s, with any of its characters
// escaped (see unescape) and in any ASCII case, by Mask.
func (r *Redactor) replaceForms(s string) string {
	var cuts []span
	// The text as is, then with one family of escapes decoded (one quoting
	// context: a receiver's JSON, URL, HTML or C string), then with two
	// (JSON URL-encoded, a URL-encoded form in JSON).
	id := view{s, identity(len(s))}
	bs, ps := id.unescape(familyBackslash), id.unescape(familyPercent)
	for _, v := range []view{id, bs, ps, id.unescape(familyHTML), bs.unescape(familyPercent), ps.unescape(familyBackslash)} {
		sp := v.sp
		low := lowerASCII(v.text)
		for _, f := range r.forms {
			for i := 0; ; {
				j := strings.Index(low[i:], f)
				if j < 0 {
					break
				}
				j += i
				cuts = append(cuts, span{sp[j].from, sp[j+len(f)-1].to})
				i = j + 1
			}
		}
	}
	if len(cuts) == 0 {
		return s
	}
	slices.SortFunc(cuts, func(a, b span) int { return cmp.Compare(a.from, b.from) })
	var b strings.Builder
	at := 0
	for _, c := range cuts {
		if c.to <= at {
			continue
		}
		if c.from >= at {
			b.WriteString(s[at:c.from])
			b.WriteString(Mask)
		}
		at = c.to
	}
	b.WriteString(s[at:])
	return b.String()
}

// span is where one byte of the unescaped text came from in the original.
type span struct{ from, to int }

// view is a text and, for each of its bytes, where it came from in the original.
type view struct {
	text string
	sp   []span
}

// identity is the spans of a text that is the original.
func identity(n int) []span {
	sp := make([]span, n)
	for i := range sp {
		sp[i] = span{i, i + 1}
	}
	return sp
}

// Families of escapes, each a quoting context's.
const (
	familyBackslash = '\\' // JSON's \uXXXX (surrogate pairs joined) and \c for punctuation c; C's \xXX
	familyPercent   = '%'  // URL encoding's %XX, and + for a space
	familyHTML      = '&'  // HTML's &#NN;, &#xHH; and &amp; &lt; &gt; &quot; &apos;
)

// unescape decodes the escapes of one family in v, hexadecimal digits in
// any case, keeping where each decoded byte came from.
func (v view) unescape(family byte) view {
	s, sp := v.text, v.sp
	out := make([]byte, 0, len(s))
	osp := make([]span, 0, len(s))
	for i := 0; i < len(s); {
		if n, c, ok := escapeAt(s, i); ok && s[i] == family {
			for _, x := range c {
				out = append(out, x)
				osp = append(osp, span{sp[i].from, sp[i+n-1].to})
			}
			i += n
			continue
		}
		c := s[i]
		if c == '+' && family == familyPercent {
			c = ' ' // a space in a query
		}
		out = append(out, c)
		osp = append(osp, sp[i])
		i++
	}
	return view{string(out), osp}
}

// escapeAt decodes the escape at s[i:], if any: its length and bytes.
func escapeAt(s string, i int) (int, []byte, bool) {
	rest := s[i:]
	switch {
	case len(rest) >= 6 && rest[0] == '\\' && (rest[1] == 'u' || rest[1] == 'U'):
		v, err := strconv.ParseUint(rest[2:6], 16, 32)
		if err != nil {
			return 0, nil, false
		}
		r, n := rune(v), 6
		if utf16.IsSurrogate(r) && len(rest) >= 12 && rest[6] == '\\' && (rest[7] == 'u' || rest[7] == 'U') {
			if v2, err := strconv.ParseUint(rest[8:12], 16, 32); err == nil {
				r, n = utf16.DecodeRune(r, rune(v2)), 12
			}
		}
		return n, utf8.AppendRune(nil, r), true
	case len(rest) >= 4 && rest[0] == '\\' && (rest[1] == 'x' || rest[1] == 'X'):
		return hexByte(rest, 4)
	case len(rest) >= 2 && rest[0] == '\\' && rest[1] < utf8.RuneSelf && !isAlnum(rest[1]):
		return 2, []byte{rest[1]}, true
	case len(rest) >= 3 && rest[0] == '%':
		return hexByte(rest, 3)
	case len(rest) >= 4 && rest[0] == '&' && rest[1] != '#':
		for name, c := range htmlNamed {
			if len(rest) >= len(name) && strings.EqualFold(rest[:len(name)], name) {
				return len(name), []byte{c}, true
			}
		}
		return 0, nil, false
	case len(rest) >= 4 && rest[0] == '&' && rest[1] == '#':
		end := strings.IndexByte(rest, ';')
		if end < 3 || end > 12 {
			return 0, nil, false
		}
		num, base := rest[2:end], 10
		if num[0] == 'x' || num[0] == 'X' {
			num, base = num[1:], 16
		}
		v, err := strconv.ParseUint(num, base, 32)
		if err != nil || v > unicode.MaxRune {
			return 0, nil, false
		}
		return end + 1, utf8.AppendRune(nil, rune(v)), true
	}
	return 0, nil, false
}

// hexByte decodes the escape s[:n] that ends in two hexadecimal digits.
func hexByte(s string, n int) (int, []byte, bool) {
	v, err := strconv.ParseUint(s[n-2:n], 16, 8)
	return n, []byte{byte(v)}, err == nil
}

// htmlNamed are the named references html.EscapeString and template
// escapers write.
var htmlNamed = map[string]byte{"&amp;": '&', "&lt;": '<', "&gt;": '>', "&quot;": '"', "&apos;": '\'', "&#39;": '\''}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

var (
	// authCredentials matches the credentials of an Authorization value,
	// escaped characters included (otlp\/tok\u002bSECRET).
	authCredentials = regexp.MustCompile(`(?i)\b(basic|bearer)(\s+|%20|\+|\\u0020)[A-Za-z0-9+/=._~%\\-]{8,}`)
	// userinfo matches the userinfo of a URL.
	userinfo = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s@"'<>]+@`)
)

// String returns s with every known secret, in each of its forms, and any
// Basic or Bearer credentials and URL userinfo replaced by Mask.
func (r *Redactor) String(s string) string {
	if r != nil && len(r.forms) > 0 {
		s = r.replaceForms(s)
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
