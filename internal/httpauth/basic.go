// Package httpauth checks HTTP Basic credentials for every server of the
// worker that takes them (the HTTPS drain, the OTLP receiver, the live view),
// in one way: in constant time, on SHA-256 digests so that the secrets'
// lengths do not leak either, and without allocating for the canonical
// header a client such as Logplex sends.
package httpauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
)

// Basic holds the digests of one user and password. The zero value accepts
// nothing. Safe for concurrent use.
type Basic struct {
	set                bool
	userHash, passHash [sha256.Size]byte
	authHash           [sha256.Size]byte // of the canonical header "Basic base64(user:password)"
}

// NewBasic returns a checker for user and password. It keeps only their
// digests.
func NewBasic(user, password string) *Basic {
	return &Basic{
		set:      true,
		userHash: sha256.Sum256([]byte(user)),
		passHash: sha256.Sum256([]byte(password)),
		authHash: sha256.Sum256([]byte("Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password)))),
	}
}

// Check reports whether r carries exactly one Authorization header with
// these credentials. The canonical header is compared first, without
// allocating; other spellings of the scheme ("basic") are decoded.
func (b *Basic) Check(r *http.Request) bool {
	if b == nil || !b.set {
		return false
	}
	hdr := r.Header["Authorization"]
	if len(hdr) != 1 {
		return false
	}
	// Copying to a stack buffer avoids the allocation of []byte(hdr[0]).
	var buf [256]byte
	if len(hdr[0]) <= len(buf) {
		a := sha256.Sum256(buf[:copy(buf[:], hdr[0])])
		if subtle.ConstantTimeCompare(a[:], b.authHash[:]) == 1 {
			return true
		}
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	u := sha256.Sum256([]byte(user))
	p := sha256.Sum256([]byte(pass))
	return subtle.ConstantTimeCompare(u[:], b.userHash[:])&subtle.ConstantTimeCompare(p[:], b.passHash[:]) == 1
}
