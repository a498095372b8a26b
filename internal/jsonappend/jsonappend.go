// Package jsonappend appends JSON numbers and strings to byte slices
// exactly as encoding/json writes them, for the encoders that build their
// JSON by hand: the live view's API and the Librato outlet, whose bodies are
// hundreds of thousands of numbers that encoding/json would first need as a
// tree of values (see view's BenchmarkSeries and librato's
// BenchmarkEncodeJSONBaseline*), and the OTLP receiver's JSON answers.
// For example, String appends "web.1 \u003cb\u003e" for `web.1 <b>`, and
// Float appends 1e-7 for 0.0000001.
package jsonappend

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// Float appends v as a JSON number the way encoding/json writes a
// float64: no exponent between 1e-6 and 1e21, the shortest exact form.
func Float(b []byte, v float64) []byte {
	abs := math.Abs(v)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		b = strconv.AppendFloat(b, v, 'e', -1, 64)
		// Like encoding/json: e-07 becomes e-7.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
		return b
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

const hexDigits = "0123456789abcdef"

// String appends s as a JSON string, as encoding/json writes it. Invalid UTF-8 becomes U+FFFD;
// <, > and & are escaped so that the text is safe inside HTML too.
func String(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c, size := s[i], 1
		if c < utf8.RuneSelf && c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
			i++
			continue
		}
		var r rune
		if c >= utf8.RuneSelf {
			if r, size = utf8.DecodeRuneInString(s[i:]); r != '\u2028' && r != '\u2029' && (r != utf8.RuneError || size != 1) {
				i += size
				continue
			}
		}
		b = append(b, s[start:i]...)
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < utf8.RuneSelf:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		case r == utf8.RuneError: // invalid UTF-8
			b = append(b, `\ufffd`...)
		default: // U+2028, U+2029
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
