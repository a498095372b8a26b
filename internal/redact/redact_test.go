package redact

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// The secrets the worker holds (worker/config.go), with the user each goes
// with for Basic auth ("" when it travels alone).
var secrets = map[string]struct{ user, secret string }{
	"LIBRATO_TOKEN":             {"ops@example.com", "tok-9f8e7d6c5b4a"},
	"LIBRATO_TOKEN (AppOptics)": {"", "aotoken/with+slash="},
	"REMOTE_WRITE_PASSWORD":     {"tenant1", "p@ss:word w/ spaces&more"},
	"REMOTE_WRITE_BEARER_TOKEN": {"", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"},
	"DRAIN_PASSWORD":            {"logplex", "s3cr3t-drain-pw"},
	"HEROKU_API_KEY":            {"", "01234567-89ab-cdef-0123-456789abcdef"},
	"REMOTE_WRITE_URL api_key":  {"", "k3y\"quoted\\back<tag>"},
}

// forms are the ways a receiver or peer can echo a secret back.
var forms = map[string]func(user, secret string) string{
	"raw": func(_, s string) string { return "token " + s + " refused" },
	"base64 Basic": func(u, s string) string {
		return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+s))
	},
	"base64 Basic in JSON": func(u, s string) string {
		return `{"error":"bad header","header":"Basic ` + base64.StdEncoding.EncodeToString([]byte(u+":"+s)) + `"}`
	},
	"base64 Basic, token as user": func(_, s string) string {
		return "got Basic " + base64.StdEncoding.EncodeToString([]byte(s+":"))
	},
	"bearer":         func(_, s string) string { return "Authorization: Bearer " + s },
	"bearer escaped": func(_, s string) string { return "auth=Bearer%20" + url.QueryEscape(s) },
	"URL userinfo": func(u, s string) string {
		return "POST " + (&url.URL{Scheme: "https", User: url.UserPassword(u, s), Host: "h.example", Path: "/x"}).String() + " failed"
	},
	"URL query": func(_, s string) string { return "GET https://h.example/v1?api_key=" + url.QueryEscape(s) + "&x=1" },
	"JSON-escaped": func(_, s string) string {
		return fmt.Sprintf("%q", s) + ` {"t":"` + strings.ReplaceAll(s, "/", `\/`) + `"}`
	},
}

func TestEverySecretEveryForm(t *testing.T) {
	for name, sec := range secrets {
		r := New(sec.secret).Basic(sec.user, sec.secret)
		for form, f := range forms {
			t.Run(name+"/"+form, func(t *testing.T) {
				in := f(sec.user, sec.secret)
				got := r.String(in)
				for _, leak := range leaks(sec.user, sec.secret) {
					if strings.Contains(got, leak) {
						t.Fatalf("String(%q) = %q still holds %q", in, got, leak)
					}
				}
				if !strings.Contains(got, Mask) {
					t.Fatalf("String(%q) = %q: nothing redacted", in, got)
				}
			})
		}
	}
}

// leaks are the substrings that would give a secret away.
func leaks(user, secret string) []string {
	j, _ := json.Marshal(secret)
	q := strconv.Quote(secret)
	out := []string{secret, url.QueryEscape(secret), url.PathEscape(secret), string(j[1 : len(j)-1]), q[1 : len(q)-1]}
	for _, pair := range []string{user + ":" + secret, secret + ":"} {
		b := base64.StdEncoding.EncodeToString([]byte(pair))
		out = append(out, b, strings.TrimRight(b, "="))
	}
	return out
}

// TestUnknownSecrets: credentials the redactor was not told about are removed
// in the generic forms; ordinary text is left alone.
func TestUnknownSecrets(t *testing.T) {
	var r *Redactor // nil: generic forms only
	tests := map[string]string{
		"Authorization: Basic dXNlcjpvdGhlcg==":           "Authorization: Basic [redacted]",
		"authorization: bearer abcdefgh.ijk-lmn_op":       "authorization: bearer [redacted]",
		"dial https://user:pw@example.com:443/x: refused": "dial https://[redacted]@example.com:443/x: refused",
		"postgres://u@db/x":                               "postgres://[redacted]@db/x",
		"HTTP 400: duplicate sample for timestamp":        "HTTP 400: duplicate sample for timestamp",
		"mail ops@example.com about it":                   "mail ops@example.com about it",
	}
	for in, want := range tests {
		if got := r.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestError(t *testing.T) {
	sentinel := errors.New("unauthorized")
	r := New("hunter2-secret")
	err := r.Error(fmt.Errorf("POST: body %q: %w", "hunter2-secret", sentinel))
	if strings.Contains(err.Error(), "hunter2") || !errors.Is(err, sentinel) {
		t.Fatalf("Error = %v (Is sentinel: %v)", err, errors.Is(err, sentinel))
	}
	if r.Error(nil) != nil || r.Error(sentinel) != sentinel {
		t.Fatal("Error changed an error without secrets")
	}
}

func Example() {
	r := New("tok-9f8e7d6c5b4a").Basic("ops@example.com", "tok-9f8e7d6c5b4a")
	fmt.Println(r.String(`{"errors":{"request":["Authorization Basic b3BzQGV4YW1wbGUuY29tOnRvay05ZjhlN2Q2YzViNGE= invalid"]}}`))
	fmt.Println(r.String("token tok-9f8e7d6c5b4a expired"))
	// Output:
	// {"errors":{"request":["Authorization Basic [redacted] invalid"]}}
	// token [redacted] expired
}
