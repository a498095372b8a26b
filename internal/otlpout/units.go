package otlpout

import "strings"

// ucum maps the units l2met lines carry to UCUM case-sensitive codes, the
// unit syntax OTLP asks for (as OpenTelemetry's semantic conventions use
// it). Values are never scaled: "21.22MB" stays 21.22 with unit "MiBy".
// Byte multiples are binary, as Heroku's runtime metrics and Postgres mean
// them (the remote-write outlet converts them with powers of 1024 too).
var ucum = map[string]string{
	"ns": "ns", "us": "us", "µs": "us", "μs": "us",
	"ms": "ms",
	"s":  "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
	"min": "min", "h": "h",
	"B": "By", "b": "By", "byte": "By", "bytes": "By",
	"kB": "KiBy", "KB": "KiBy", "KiB": "KiBy", "kb": "KiBy",
	"MB": "MiBy", "MiB": "MiBy", "mb": "MiBy",
	"GB": "GiBy", "GiB": "GiBy", "gb": "GiBy",
	"TB": "TiBy", "TiB": "TiBy",
	"%": "%", "": "",
}

// UCUM returns the UCUM unit for an l2met unit suffix: time and byte units
// and "%" map to their codes (ms → ms, sec → s, bytes → By, MB → MiBy);
// any other unit becomes a UCUM annotation ("pages" → "{pages}", with
// braces and non-printable characters replaced by "_"); "" stays "". Safe
// for concurrent use.
func UCUM(unit string) string {
	if u, ok := ucum[unit]; ok {
		return u
	}
	var b strings.Builder
	b.Grow(len(unit) + 2)
	b.WriteByte('{')
	for i := 0; i < len(unit); i++ {
		c := unit[i]
		if c < 0x21 || c > 0x7e || c == '{' || c == '}' {
			c = '_'
		}
		b.WriteByte(c)
	}
	b.WriteByte('}')
	return b.String()
}
