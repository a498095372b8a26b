package redact

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// Quoting contexts: a receiver quotes what it echoes in one of them, each
// character raw or escaped as that context allows.
const (
	ctxJSON = iota // \uXXXX (hex in either case), \/ \" \\; " and \ always escaped
	ctxURL         // %XX (either case), + for a space; % always escaped
	ctxHTML        // &#NN; &#xHH; &amp; &lt; &gt; &quot; &apos; (either case); & always escaped
	ctxC           // \xXX (either case); \ always escaped
	numCtx
)

// escapeChar writes c as a receiver quoting it in context ctx may, chosen
// by rng.
func escapeChar(b *strings.Builder, c rune, rng *rand.Rand, ctx int) {
	hexCase := func(s string) string {
		if rng.IntN(2) == 0 {
			return strings.ToUpper(s)
		}
		return s
	}
	raw := rng.IntN(2) == 0
	switch ctx {
	case ctxJSON:
		switch {
		case raw && c != '"' && c != '\\':
			b.WriteRune(c)
		case (c == '/' || c == '"' || c == '\\') && rng.IntN(2) == 0:
			b.WriteString(`\` + string(c))
		default:
			if r1, r2 := utf16.EncodeRune(c); r1 != utf8.RuneError {
				b.WriteString(`\u` + hexCase(fmt.Sprintf(`%04x`, r1)) + `\u` + hexCase(fmt.Sprintf(`%04x`, r2)))
			} else {
				b.WriteString(`\u` + hexCase(fmt.Sprintf(`%04x`, c)))
			}
		}
	case ctxURL:
		switch {
		case raw && c != '%' && c != '+':
			b.WriteRune(c)
		case c == ' ' && rng.IntN(2) == 0:
			b.WriteByte('+')
		default:
			for _, x := range []byte(string(c)) {
				b.WriteString("%" + hexCase(fmt.Sprintf("%02x", x)))
			}
		}
	case ctxHTML:
		named := map[rune]string{'&': "&amp;", '<': "&lt;", '>': "&gt;", '"': "&quot;", '\'': "&apos;"}
		switch {
		case raw && c != '&':
			b.WriteRune(c)
		case named[c] != "" && rng.IntN(2) == 0:
			b.WriteString(hexCase(named[c]))
		case rng.IntN(2) == 0:
			fmt.Fprintf(b, "&#%d;", c)
		default:
			b.WriteString("&#" + hexCase(fmt.Sprintf("x%x", c)) + ";")
		}
	case ctxC:
		switch {
		case (raw || c >= utf8.RuneSelf) && c != '\\':
			b.WriteRune(c)
		default:
			b.WriteString(`\x` + hexCase(fmt.Sprintf("%02x", c)))
		}
	}
}

// encodings are whole-string encodings a receiver may apply to what it
// echoes, before or instead of escaping characters.
var encodings = map[string]func(string) string{
	"raw":          func(s string) string { return s },
	"upper":        strings.ToUpper,
	"json":         func(s string) string { b, _ := json.Marshal(s); return string(b[1 : len(b)-1]) },
	"query":        url.QueryEscape,
	"path":         url.PathEscape,
	"base64":       func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
	"base64 url":   func(s string) string { return base64.URLEncoding.EncodeToString([]byte(s)) },
	"base64 raw":   func(s string) string { return base64.RawStdEncoding.EncodeToString([]byte(s)) },
	"query of b64": func(s string) string { return url.QueryEscape(base64.StdEncoding.EncodeToString([]byte(s))) },
}

// echo encodes secret with the named encoding, then quotes it in a context
// chosen at random, each character raw or escaped at random (mixed
// escapes, as System.Text.Json's \/ and \u002b in one token). A text
// URL-encoded already is not quoted in the URL context again (that is a
// second encoding of the whole, not of single characters).
func echo(secret, encoding string, rng *rand.Rand, mix bool) string {
	s := encodings[encoding](secret)
	if !mix {
		return s
	}
	ctx := rng.IntN(numCtx)
	for ctx == ctxURL && (strings.HasPrefix(encoding, "query") || encoding == "path") {
		ctx = rng.IntN(numCtx)
	}
	var b strings.Builder
	for _, c := range s {
		escapeChar(&b, c, rng, ctx)
	}
	return b.String()
}

// checkNoLeak fails when secret survives in got: its echo verbatim, or the
// secret itself once got is unescaped as the echo was.
func checkNoLeak(t *testing.T, secret, in, echoed, got string) {
	t.Helper()
	if strings.Contains(got, echoed) || strings.Contains(got, secret) {
		t.Fatalf("String(%q) = %q still holds %q (the secret %q)", in, got, echoed, secret)
	}
	if u, err := url.QueryUnescape(got); err == nil && strings.Contains(u, secret) {
		t.Fatalf("String(%q) = %q holds the secret %q once URL-decoded", in, got, secret)
	}
	var j string
	if err := json.Unmarshal([]byte(`"`+got+`"`), &j); err == nil && strings.Contains(j, secret) {
		t.Fatalf("String(%q) = %q holds the secret %q once JSON-decoded", in, got, secret)
	}
}

// usable reports whether a fuzzed secret can be checked: at least 6
// characters of valid UTF-8 that the Mask and its surroundings cannot spell
// again, and whose upper case folds back to it.
func usable(secret string) bool {
	return len(secret) >= 6 && utf8.ValidString(secret) && !strings.ContainsAny(secret, "[]\x00") &&
		!strings.Contains(Mask+"echo: \"", secret) && strings.EqualFold(strings.ToUpper(secret), secret) &&
		utf8.RuneCountInString(strings.ToUpper(secret)) == utf8.RuneCountInString(secret)
}

// FuzzEncodings: a secret the redactor was given never survives, in any
// encoding a receiver may echo it in, with its characters escaped at
// random.
func FuzzEncodings(f *testing.F) {
	f.Add("otlp/tok+SECRET3=", uint64(1))
	f.Add("p@ss:word w/ spaces&more", uint64(2))
	f.Add("k3y\"quoted\\back<tag>", uint64(3))
	f.Add("tök€n-ünïcode-𝄞", uint64(4))
	f.Fuzz(func(t *testing.T, secret string, seed uint64) {
		if !usable(secret) {
			return
		}
		rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		r := New(secret)
		for name := range encodings {
			for _, mix := range []bool{false, true} {
				e := echo(secret, name, rng, mix)
				in := `{"error":"refused","echo":"` + e + `"}`
				checkNoLeak(t, secret, in, e, r.String(in))
			}
		}
	})
}

// TestEncodingsRandomSecrets runs FuzzEncodings' check over 2,000 random
// secrets of random characters (ASCII punctuation, letters, spaces and
// non-ASCII), without the fuzzing engine.
func TestEncodingsRandomSecrets(t *testing.T) {
	rng := rand.New(rand.NewPCG(20, 26))
	alphabet := []rune("abcXYZ0123456789/+=-_.~:@!$&'()*,;%?# \"\\<>éü€𝄞")
	n := 0
	for n < 2000 {
		rs := make([]rune, 6+rng.IntN(30))
		for i := range rs {
			rs[i] = alphabet[rng.IntN(len(alphabet))]
		}
		secret := string(rs)
		if !usable(secret) {
			continue
		}
		n++
		r := New(secret)
		for name := range encodings {
			e := echo(secret, name, rng, true)
			in := "echo: " + e + " end"
			checkNoLeak(t, secret, in, e, r.String(in))
		}
	}
}

// TestDotNetEcho is issue 20's leak: System.Text.Json escapes / as \/ and +
// as \u002b by default; the echoed header reached three warnings.
func TestDotNetEcho(t *testing.T) {
	secret := "Bearer otlp/tok+SECRET3="
	in := `{"error":"refused","headers":{"Authorization":"Bearer otlp\/tok\u002bSECRET3="}}`
	for name, r := range map[string]*Redactor{"known secret": New(secret), "generic bearer rule": nil} {
		got := r.String(in)
		if strings.Contains(got, "SECRET3") || strings.Contains(got, "tok") {
			t.Errorf("%s: String(%q) = %q", name, in, got)
		}
	}
}
