// Package appauth derives and checks the per-app drain credentials of
// multi-app mode (DRAIN_SECRET): one worker serves many Heroku apps, and each
// app's drain URL carries the app's name as its user and a token derived from
// the secret and that name as its password. Adding an app needs no
// configuration change: its token is computed, not stored.
//
// A token is HMAC-SHA256(secret, "dynometrics drain v1\n" + app), encoded in
// unpadded URL-safe base64 (RFC 4648 §5). Its 43 characters are all
// "unreserved" in RFC 3986 (letters, digits, '-' and '_'), so the token goes
// into a URL's userinfo, a shell command line and an HTTP header as is,
// without percent-encoding or quoting, and never contains the ':' that ends
// a Basic auth user. The prefix separates these MACs from any other use of
// the same secret.
//
// Several secrets are accepted, for rotation: the first signs (Token), every
// one verifies (Check). Checks compare in constant time and try every secret,
// so neither the secret that matched nor how much of a token matched shows
// in the time taken.
package appauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strings"
	"sync"
	"unsafe"
)

// MinSecretBytes is the shortest secret accepted: 128 bits of hex.
const MinSecretBytes = 32

// TokenLen is the length of every token, in characters.
const TokenLen = 43 // base64.RawURLEncoding.EncodedLen(sha256.Size)

// NameRule says which app names are valid, in Heroku's own words.
const NameRule = "3 to 30 characters: lower-case letters, digits and dashes, starting with a letter"

// ValidName reports an error, naming the rule, unless app is a valid Heroku
// app name (NameRule). The error quotes app: app names are not secret.
func ValidName(app string) error {
	if validName(app) {
		return nil
	}
	return fmt.Errorf("app name %q is not a Heroku app name (%s)", app, NameRule)
}

func validName[S string | []byte](app S) bool {
	if len(app) < 3 || len(app) > 30 || app[0] < 'a' || app[0] > 'z' {
		return false
	}
	for i := 1; i < len(app); i++ {
		c := app[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Keyring holds the secrets. Safe for concurrent use.
type Keyring struct {
	keys  [][]byte
	pools []sync.Pool // per key: keyed HMAC states, Reset before use

	// tokens caches the tokens of the app names Check was asked about, so
	// that a request costs a map lookup by its (public) user name and
	// constant-time comparisons rather than one HMAC per secret (2.4 µs and
	// 6 allocations a request: 4 % of ingest per line in multi-app mode).
	// At most maxCachedApps names; emptied when full.
	mu     sync.RWMutex
	tokens map[string]*appTokens
}

// appTokens are one app name's tokens, one per secret.
type appTokens struct {
	app    string
	tokens [][TokenLen]byte
}

// maxCachedApps bounds Keyring.tokens: names are chosen by whoever sends a
// request, valid or not, so the cache must stay bounded.
const maxCachedApps = 4096

// ErrNoSecret is returned by New for an empty list.
var ErrNoSecret = errors.New("appauth: no secret")

// New returns a Keyring for secrets: the first signs, every one verifies.
// Errors name the position of a bad secret, never its value.
func New(secrets []string) (*Keyring, error) {
	if len(secrets) == 0 {
		return nil, ErrNoSecret
	}
	k := &Keyring{pools: make([]sync.Pool, len(secrets)), tokens: make(map[string]*appTokens)}
	for i, s := range secrets {
		if len(s) < MinSecretBytes {
			return nil, fmt.Errorf("secret %d of %d is shorter than %d characters", i+1, len(secrets), MinSecretBytes)
		}
		key := []byte(s)
		k.keys = append(k.keys, key)
		k.pools[i].New = func() any { return hmac.New(sha256.New, key) }
	}
	return k, nil
}

// Parse splits a comma-separated DRAIN_SECRET value (spaces around each
// secret are removed) and returns its Keyring.
func Parse(list string) (*Keyring, error) {
	var secrets []string
	for _, s := range strings.Split(list, ",") {
		secrets = append(secrets, strings.TrimSpace(s))
	}
	return New(secrets)
}

// tokenPrefix separates these MACs from any other use of the secrets.
var tokenPrefix = []byte("dynometrics drain v1\n")

// mac appends the token of app under the i-th key to dst. Keyed HMAC states
// are pooled: setting up the key costs as much as the MAC of a name.
func (k *Keyring) mac(dst []byte, i int, app string) []byte {
	m := k.pools[i].Get().(hash.Hash)
	m.Reset()
	m.Write(tokenPrefix)
	var name [64]byte // app names are at most 30 bytes: one copy, no allocation
	for len(app) > 0 {
		n := copy(name[:], app)
		m.Write(name[:n])
		app = app[n:]
	}
	var sum [sha256.Size]byte
	dst = base64.RawURLEncoding.AppendEncode(dst, m.Sum(sum[:0]))
	k.pools[i].Put(m)
	return dst
}

// Token returns app's drain password, signed with the first secret. It does
// not check the name: call ValidName first.
func (k *Keyring) Token(app string) string {
	return string(k.mac(make([]byte, 0, TokenLen), 0, app))
}

// check compares password with every token of app, a valid name, in
// constant time, and returns app as a string it may keep, or "" and false.
func (k *Keyring) check(app, password []byte) (string, bool) {
	k.mu.RLock()
	t := k.tokens[string(app)]
	k.mu.RUnlock()
	if t == nil {
		t = &appTokens{app: string(app), tokens: make([][TokenLen]byte, len(k.keys))}
		for i := range k.keys {
			k.mac(t.tokens[i][:0], i, t.app)
		}
		k.mu.Lock()
		if len(k.tokens) >= maxCachedApps {
			clear(k.tokens)
		}
		k.tokens[t.app] = t
		k.mu.Unlock()
	}
	ok := 0
	for i := range t.tokens {
		ok |= subtle.ConstantTimeCompare(t.tokens[i][:], password)
	}
	if ok != 1 {
		return "", false
	}
	return t.app, true
}

// Check returns the app r authenticates as: r carries exactly one
// Authorization header with Basic credentials whose user is a valid app name
// and whose password is that app's token under one of the secrets. Any
// other request (no or several headers, another scheme, a malformed or
// invalid name, one app's token under another app's name) gets ok false.
func (k *Keyring) Check(r *http.Request) (app string, ok bool) {
	vs := r.Header["Authorization"]
	if k == nil || len(vs) != 1 {
		return "", false
	}
	// As net/http's Request.BasicAuth, without its allocations.
	const prefix = "Basic "
	v := vs[0]
	if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return "", false
	}
	enc := v[len(prefix):]
	var buf [128]byte // a valid name, ':' and a token take 74 bytes
	if base64.StdEncoding.DecodedLen(len(enc)) > len(buf) {
		return "", false
	}
	n, err := base64.StdEncoding.Decode(buf[:], unsafe.Slice(unsafe.StringData(enc), len(enc))) // read only
	if err != nil {
		return "", false
	}
	user, pass, found := bytes.Cut(buf[:n], []byte{':'})
	if !found || !validName(user) {
		return "", false
	}
	return k.check(user, pass)
}

// DrainURL returns app's HTTPS drain URL on host (a host name, with a port
// if any): https://APP:TOKEN@HOST/logs.
func (k *Keyring) DrainURL(host, app string) string {
	return "https://" + app + ":" + k.Token(app) + "@" + host + "/logs"
}

// BasicHeader returns the value of the Authorization header that carries
// app's credentials: what a Fir telemetry drain sends.
func (k *Keyring) BasicHeader(app string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(app+":"+k.Token(app)))
}
