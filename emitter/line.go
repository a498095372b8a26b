package emitter

import (
	"math"
	"strconv"
	"strings"

	"github.com/dynometrics/dynometrics/internal/decimal"
)

// nameByte reports the bytes Librato accepts in names and sources.
var nameByte = func() (t [256]bool) {
	for _, c := range "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.:_-" {
		t[c] = true
	}
	return t
}()

// SanitizeName returns the name the Emitter prints for a registry name, before
// any statistic suffix: every byte outside [A-Za-z0-9.:_-] becomes '_' (so a
// multi-byte UTF-8 character becomes several), and prefix, when set, is
// joined with a '.' (not doubled when prefix already ends in '.'). Truncation
// to MaxNameLen happens when the suffix is known; see the package
// documentation. Safe for concurrent use.
func SanitizeName(prefix, name string) string {
	return string(appendName(nil, prefix, name))
}

func appendName(dst []byte, prefix, name string) []byte {
	if prefix != "" {
		dst = append(append(dst, strings.TrimSuffix(prefix, ".")...), '.') // one '.', not doubled
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !nameByte[c] {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}

// pairKey renders "<kind>#<full><suffix>=", truncating full so that
// full+suffix fits in MaxNameLen.
func pairKey(kind string, full []byte, suffix string) string {
	n := len(full)
	if n+len(suffix) > MaxNameLen {
		n = MaxNameLen - len(suffix)
	}
	return kind + "#" + string(full[:n]) + suffix + "="
}

// SignificantDigits is the precision of printed non-integer values: enough
// for any metric, and it hides binary floating-point noise
// (10.799999999999999 prints as 10.8).
const SignificantDigits = 12

// AppendValue appends v to b as the emitter prints values: without exponent,
// an integer as one, anything else rounded to SignificantDigits significant
// digits (so 909.5000000000001 prints as 909.5). The worker's local outlet
// prints its buckets the same way.
func AppendValue(b []byte, v float64) []byte {
	a := math.Abs(v)
	if v == math.Trunc(v) && a < 1<<53 {
		return strconv.AppendInt(b, int64(v), 10)
	}
	if a < 1e12 && a > 0 {
		// v*10^k rounded to an integer below 10^12 < 2^53 is exact, and an
		// exact integer divided by an exact power of ten is correctly rounded,
		// so the result prints as the shortest decimal.
		k := SignificantDigits - 1 - int(math.Floor(math.Log10(a)))
		if k > 0 && k < len(decimal.Pow10) {
			v = math.Round(v*decimal.Pow10[k]) / decimal.Pow10[k]
		}
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

// lines accumulates pairs into lines of at most max bytes (newline included),
// each starting with header. Not safe for concurrent use.
type lines struct {
	header []byte
	max    int
	buf    []byte
	ends   []int // offsets just past each '\n'
	open   bool  // a line is started and has at least one pair
	start  int   // offset of the open line
}

func (l *lines) reset() {
	l.buf = l.buf[:0]
	l.ends = l.ends[:0]
	l.open = false
}

// add appends one pair, starting a new line when it does not fit. It
// reports false when the pair cannot fit even in an empty line.
func (l *lines) add(pair []byte) bool {
	if len(l.header)+1+len(pair)+1 > l.max {
		return false
	}
	if l.open && len(l.buf)-l.start+1+len(pair)+1 > l.max {
		l.end()
	}
	if !l.open {
		l.start = len(l.buf)
		l.buf = append(l.buf, l.header...)
		l.open = true
	}
	l.buf = append(l.buf, ' ')
	l.buf = append(l.buf, pair...)
	return true
}

// end terminates the open line, if any.
func (l *lines) end() {
	if !l.open {
		return
	}
	l.buf = append(l.buf, '\n')
	l.ends = append(l.ends, len(l.buf))
	l.open = false
}
