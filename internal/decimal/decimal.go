// Package decimal reads decimal numbers from byte slices without
// allocating, for the parsers of l2met values ("21.22MB") and statsd lines
// ("0.25"), and holds the exact powers of ten that formatting rounds with.
package decimal

import (
	"math"
	"strconv"
)

// Pow10 holds the powers of ten that are exact float64 values, 1e0 to 1e22.
var Pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// Prefix reads the number at the start of b,
// [+-]digits[.digits][(e|E)[+-]digits] with digits on at least one side of
// the point, and returns it and its length; n is 0 when b does not start
// with a number, and ok is false when it does not fit a finite float64.
// The value equals strconv.ParseFloat's. The common shapes (at most 15
// digits, no exponent) take an exact fast path (Clinger's: an integer
// mantissa below 2^53 divided by an exact power of ten is correctly
// rounded), several times faster than strconv.ParseFloat, which is the
// fallback (it does not allocate up to 32 bytes).
func Prefix(b []byte) (v float64, n int, ok bool) {
	i, neg := 0, false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg, i = b[0] == '-', 1
	}
	var mant uint64
	digits, frac, dot := 0, 0, false
	for ; i < len(b); i++ {
		if c := b[i]; c >= '0' && c <= '9' {
			mant = mant*10 + uint64(c-'0')
			digits++
			if dot {
				frac++
			}
		} else if c != '.' || dot {
			break
		} else {
			dot = true
		}
	}
	if digits == 0 {
		return 0, 0, false
	}
	exp := false
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		j := i + 1
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		k := j
		for k < len(b) && b[k] >= '0' && b[k] <= '9' {
			k++
		}
		if k > j {
			i, exp = k, true
		}
	}
	if !exp && digits <= 15 {
		v = float64(mant) / Pow10[frac]
		if neg {
			v = -v
		}
		return v, i, true
	}
	v, err := strconv.ParseFloat(string(b[:i]), 64)
	return v, i, err == nil && !math.IsInf(v, 0) && !math.IsNaN(v)
}
