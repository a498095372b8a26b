package appauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

const (
	secretA = "0123456789abcdef0123456789abcdef" // 32 characters
	secretB = "fedcba9876543210fedcba9876543210"
)

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"billing": true, "abc": true, "a-1": true, strings.Repeat("a", 30): true, "my-app-2": true,
		"ab": false, strings.Repeat("a", 31): false, "1app": false, "-app": false, "Billing": false,
		"bill_ing": false, "bill.ing": false, "bill ing": false, "": false, "bïlling": false, "app:x": false,
	} {
		if got := ValidName(name) == nil; got != want {
			t.Errorf("ValidName(%q) ok = %v, want %v", name, got, want)
		}
	}
	if err := ValidName("Bad"); err == nil || !strings.Contains(err.Error(), NameRule) {
		t.Errorf("error %v does not state the rule", err)
	}
}

// TestToken pins the derivation: HMAC-SHA256 of the prefixed name, in
// unpadded URL-safe base64, computed independently here.
func TestToken(t *testing.T) {
	k, err := New([]string{secretA})
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, []byte(secretA))
	m.Write([]byte("dynometrics drain v1\nbilling"))
	want := base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	if got := k.Token("billing"); got != want || len(got) != TokenLen {
		t.Errorf("Token = %q (%d), want %q", got, len(got), want)
	}
	if strings.ContainsAny(k.Token("billing"), ":@/%+=") {
		t.Error("token needs escaping in a URL userinfo")
	}
	if k.Token("billing") == k.Token("checkout") {
		t.Error("two apps share a token")
	}
	if long := strings.Repeat("long-name-", 20); k.Token(long) != string(macSlow(nil, []byte(secretA), long)) {
		t.Error("the token of a name longer than mac's buffer differs from the reference")
	}
	if u := k.DrainURL("metrics.example.com", "billing"); u != "https://billing:"+want+"@metrics.example.com/logs" {
		t.Errorf("DrainURL = %q", u)
	}
}

func TestNew(t *testing.T) {
	if _, err := New(nil); err == nil {
		t.Error("no secret accepted")
	}
	_, err := Parse(secretA + ",tinyvalue")
	if err == nil || !strings.Contains(err.Error(), "secret 2 of 2") || strings.Contains(err.Error(), "tinyvalue") {
		t.Errorf("Parse with a short secret: %v", err)
	}
	if _, err := Parse(secretA + ","); err == nil {
		t.Error("an empty secret accepted")
	}
	k, err := Parse(" " + secretA + " , " + secretB)
	if err != nil || len(k.keys) != 2 {
		t.Fatalf("Parse: %v", err)
	}
}

func TestCheck(t *testing.T) {
	old, _ := New([]string{secretB})
	rotated, _ := New([]string{secretA, secretB}) // A signs, B still verifies
	other, _ := New([]string{secretA})
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := map[string]struct {
		headers []string
		app     string
	}{
		"new token":                  {[]string{rotated.BasicHeader("billing")}, "billing"},
		"old token after rotation":   {[]string{old.BasicHeader("billing")}, "billing"},
		"lower-case scheme":          {[]string{"basic " + enc("billing:"+rotated.Token("billing"))}, "billing"},
		"another app's token":        {[]string{"Basic " + enc("billing:"+rotated.Token("checkout"))}, ""},
		"invalid name, its token":    {[]string{"Basic " + enc("Billing:"+rotated.Token("Billing"))}, ""},
		"too short a name":           {[]string{"Basic " + enc("ab:"+rotated.Token("ab"))}, ""},
		"token of another secret":    {[]string{"Basic " + enc("billing:"+func() string { k, _ := New([]string{strings.Repeat("x", 32)}); return k.Token("billing") }())}, ""},
		"truncated token":            {[]string{"Basic " + enc("billing:"+rotated.Token("billing")[:42])}, ""},
		"no header":                  {nil, ""},
		"two headers":                {[]string{rotated.BasicHeader("billing"), rotated.BasicHeader("billing")}, ""},
		"bearer":                     {[]string{"Bearer " + rotated.Token("billing")}, ""},
		"garbage":                    {[]string{"Basic %%%"}, ""},
		"empty":                      {[]string{"Basic " + enc(":")}, ""},
		"secret as password":         {[]string{"Basic " + enc("billing:"+secretA)}, ""},
		"other keyring, same secret": {[]string{other.BasicHeader("billing")}, "billing"},
	}
	for pass := range 2 { // the second pass finds every name's tokens cached
		for name, tc := range tests {
			t.Run(name+"/"+strconv.Itoa(pass), func(t *testing.T) {
				r := httptest.NewRequest("POST", "/logs", nil)
				for _, h := range tc.headers {
					r.Header.Add("Authorization", h)
				}
				app, ok := rotated.Check(r)
				if app != tc.app || ok != (tc.app != "") {
					t.Errorf("Check = %q, %v; want %q", app, ok, tc.app)
				}
			})
		}
	}
	// New URLs are signed with the first secret only.
	if rotated.Token("billing") != other.Token("billing") || rotated.Token("billing") == old.Token("billing") {
		t.Error("the first secret does not sign")
	}
	var nilK *Keyring
	r := httptest.NewRequest("POST", "/logs", nil)
	r.Header.Set("Authorization", rotated.BasicHeader("billing"))
	if _, ok := nilK.Check(r); ok {
		t.Error("nil Keyring accepts")
	}
}

// TestTokenCacheBounded: requests for ever new names keep the token cache
// bounded, and checks stay right across its emptying.
func TestTokenCacheBounded(t *testing.T) {
	k, _ := New([]string{secretA})
	check := func(app, pass string) bool {
		r := httptest.NewRequest("POST", "/logs", nil)
		r.SetBasicAuth(app, pass)
		_, ok := k.Check(r)
		return ok
	}
	for i := range maxCachedApps + 10 {
		app := "app-" + strconv.Itoa(i)
		if check(app, strings.Repeat("A", TokenLen)) {
			t.Fatalf("%s: a wrong token accepted", app)
		}
		if i%1000 == 0 && !check("billing", k.Token("billing")) {
			t.Fatalf("after %d names: billing's token refused", i)
		}
	}
	k.mu.RLock()
	n := len(k.tokens)
	k.mu.RUnlock()
	if n > maxCachedApps {
		t.Errorf("%d names cached, want at most %d", n, maxCachedApps)
	}
	if !check("billing", k.Token("billing")) || check("billing", k.Token("shop")) {
		t.Error("billing: its token refused or shop's accepted")
	}
}

// FuzzCheck: any Authorization header, never a panic, and only a valid
// name with its real token passes, as net/http's BasicAuth reads it.
func FuzzCheck(f *testing.F) {
	k, _ := New([]string{secretA, secretB})
	f.Add(k.BasicHeader("billing"))
	f.Add("basic " + base64.StdEncoding.EncodeToString([]byte("billing:"+k.Token("billing"))))
	f.Add("Basic %%%")
	f.Add("Basic " + base64.StdEncoding.EncodeToString([]byte("a:b:c")))
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest("POST", "/logs", nil)
		r.Header.Set("Authorization", header)
		app, ok := k.Check(r)
		user, pass, found := r.BasicAuth()
		want := found && ValidName(user) == nil && (pass == k.Token(user) || hmac.Equal([]byte(pass), macSlow(nil, k.keys[1], user)))
		if ok != want || ok && app != user {
			t.Fatalf("Check(%q) = %q, %v; want %v", header, app, ok, want)
		}
	})
}

// FuzzCheckPair: any user and password, never a panic, and only the real
// token of a valid name passes.
func FuzzCheckPair(f *testing.F) {
	k, _ := New([]string{secretA, secretB})
	f.Add("billing", k.Token("billing"))
	f.Add("Billing", "")
	f.Add("a-b", strings.Repeat("A", TokenLen))
	f.Fuzz(func(t *testing.T, app, pass string) {
		ok := k.CheckPair(app, pass)
		if ok && (ValidName(app) != nil || pass != k.Token(app) && !hmac.Equal([]byte(pass), macSlow(nil, k.keys[1], app))) {
			t.Fatalf("CheckPair(%q, %q) accepted", app, pass)
		}
	})
}

func BenchmarkCheck(b *testing.B) {
	k, _ := New([]string{secretA, secretB})
	r := httptest.NewRequest("POST", "/logs", nil)
	r.Header.Set("Authorization", k.BasicHeader("billing"))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := k.Check(r); !ok {
			b.Fatal("refused")
		}
	}
}

// CheckPair reports whether password is app's token under any of the
// secrets, and app a valid name (what Check decides once it has decoded
// the header). It tries every secret and compares in constant time.
func (k *Keyring) CheckPair(app, password string) bool {
	if k == nil || !validName(app) {
		return false
	}
	_, ok := k.check([]byte(app), []byte(password))
	return ok
}

// macSlow is mac without the pool or the name buffer: the tests' reference.
func macSlow(dst []byte, key []byte, app string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(tokenPrefix)
	m.Write([]byte(app))
	return base64.RawURLEncoding.AppendEncode(dst, m.Sum(nil))
}
