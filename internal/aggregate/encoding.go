package aggregate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/store"
	"github.com/dynometrics/dynometrics/internal/metric"
)

// The first byte of a State's binary form. Version 1 is a State without an
// app (single-app mode): what every earlier release wrote and still writes,
// so that during a rolling upgrade an older worker decodes what a newer one
// hands over. Version 2 carries the app (multi-app mode, DRAIN_SECRET)
// right after the version byte; the rest is version 1's form.
const (
	stateVersion    = 1
	stateVersionApp = 2
)

// Value storage modes in the binary form.
const (
	modeRaw    = 0
	modeSketch = 1
)

// MaxEncodedString bounds the length of App, Name, Source and Unit when
// decoding.
const MaxEncodedString = 4096

// ErrEncoding is wrapped by every error UnmarshalBinary returns.
var ErrEncoding = errors.New("aggregate: bad state encoding")

// MarshalBinary encodes s: version 1, kind, name, source, unit, count, sum,
// min, max, sum of squares, last and its time, then either the raw values or
// the sketch's bins (see decoder.sketch). A state with an App is encoded as
// version 2: the version byte, the app, then the same fields from the kind on.
func (s *State) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 64+len(s.App)+len(s.Name)+len(s.Source)+len(s.Unit)+8*len(s.values))
	if s.App == "" {
		b = append(b, stateVersion)
	} else {
		b = append(b, stateVersionApp)
		b = binary.AppendUvarint(b, uint64(len(s.App)))
		b = append(b, s.App...)
	}
	b = append(b, byte(s.Kind))
	for _, str := range []string{s.Name, s.Source, s.Unit} {
		b = binary.AppendUvarint(b, uint64(len(str)))
		b = append(b, str...)
	}
	b = binary.AppendUvarint(b, uint64(s.count))
	for _, f := range []float64{s.sum, s.min, s.max, s.sumSq, s.last} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	b = binary.AppendVarint(b, s.lastTime)
	if s.inSketch() {
		b = append(b, modeSketch)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(SketchAccuracy))
		b = binary.AppendUvarint(b, uint64(s.sketch.GetZeroCount()))
		for _, st := range []store.Store{s.sketch.GetNegativeValueStore(), s.sketch.GetPositiveValueStore()} {
			var n uint64
			st.ForEach(func(int, float64) bool { n++; return false })
			b = binary.AppendUvarint(b, n)
			st.ForEach(func(index int, count float64) bool {
				b = binary.AppendVarint(b, int64(index))
				b = binary.AppendUvarint(b, uint64(count))
				return false
			})
		}
		return b, nil
	}
	b = append(b, modeRaw)
	b = binary.AppendUvarint(b, uint64(len(s.values)))
	for _, v := range s.values {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b, nil
}

// decoder reads the binary form, remembering the first error and its offset.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: offset %d: %s", ErrEncoding, d.off, what)
	}
}

func (d *decoder) byte(what string) byte {
	if d.err != nil || d.off >= len(d.b) {
		d.fail(what + ": unexpected end")
		return 0
	}
	d.off++
	return d.b[d.off-1]
}

func (d *decoder) uvarint(what string) uint64 { return readVarint(d, what, binary.Uvarint) }

func (d *decoder) varint(what string) int64 { return readVarint(d, what, binary.Varint) }

// readVarint reads a varint with read (binary.Uvarint or binary.Varint).
func readVarint[T uint64 | int64](d *decoder, what string, read func([]byte) (T, int)) T {
	if d.err != nil {
		return 0
	}
	v, n := read(d.b[d.off:])
	if n <= 0 {
		d.fail(what + ": bad varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) bytes(n uint64, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail(fmt.Sprintf("%s: length %d exceeds remaining %d bytes", what, n, len(d.b)-d.off))
		return nil
	}
	out := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return out
}

func (d *decoder) float(what string) float64 {
	p := d.bytes(8, what)
	if p == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(p))
}

func (d *decoder) string(what string) string {
	n := d.uvarint(what + " length")
	if n > MaxEncodedString {
		d.fail(fmt.Sprintf("%s: length %d exceeds %d", what, n, MaxEncodedString))
	}
	return string(d.bytes(n, what))
}

// Valid bin indexes: those of the magnitudes the mapping can index. Bins
// outside this range cannot come from MarshalBinary, and DDSketch's stores
// misbehave on indexes near the int32 limits.
var (
	minSketchIndex = sketchMapping.Index(sketchMapping.MinIndexableValue())
	maxSketchIndex = sketchMapping.Index(sketchMapping.MaxIndexableValue())
)

// sketch decodes the sketch part of the binary form: the relative accuracy,
// the zero count, then the negative and the positive store, each as a bin
// count followed by (index, count) pairs. The sketch must hold count values.
//
// The form is our own rather than DDSketch's Encode: DDSketch's decoder
// panics on some crafted input (bin indexes near the int32 limits), and a
// State may come from another process.
func (d *decoder) sketch(count uint64) *ddsketch.DDSketch {
	if acc := d.float("sketch accuracy"); d.err == nil && acc != SketchAccuracy {
		d.fail(fmt.Sprintf("sketch accuracy %g, want %g", acc, SketchAccuracy))
	}
	zero := d.uvarint("zero count")
	if zero > count {
		d.fail(fmt.Sprintf("zero count %d exceeds count %d", zero, count))
	}
	total := zero
	sk := newSketch()
	for _, st := range []store.Store{sk.GetNegativeValueStore(), sk.GetPositiveValueStore()} {
		bins := d.uvarint("bin count")
		if bins > SketchMaxBins {
			d.fail(fmt.Sprintf("%d bins exceed %d", bins, SketchMaxBins))
		}
		for i := uint64(0); i < bins && d.err == nil; i++ {
			index := d.varint("bin index")
			c := d.uvarint("bin count")
			switch {
			case d.err != nil:
			case index < int64(minSketchIndex) || index > int64(maxSketchIndex):
				d.fail(fmt.Sprintf("bin index %d outside [%d, %d]", index, minSketchIndex, maxSketchIndex))
			case c == 0 || c > count-total:
				d.fail(fmt.Sprintf("bin count %d outside [1, %d]", c, count-total))
			default:
				st.AddWithCount(int(index), float64(c))
				total += c
			}
		}
	}
	if d.err == nil && (total != count || count <= ExactLimit) {
		d.fail(fmt.Sprintf("sketch holds %d values for count %d", total, count))
	}
	if d.err != nil {
		return nil
	}
	if zero != 0 {
		_ = sk.AddWithCount(0, float64(zero))
	}
	return sk
}

// UnmarshalBinary replaces s with the state encoded by MarshalBinary, of
// either version (a version 1 state has no app). Errors wrap ErrEncoding and
// name the offset and field that was wrong.
func (s *State) UnmarshalBinary(data []byte) error {
	d := &decoder{b: data}
	var n State
	switch v := d.byte("version"); {
	case d.err != nil:
	case v == stateVersionApp:
		if n.App = d.string("app"); d.err == nil && n.App == "" {
			d.fail("empty app in a version 2 state") // version 1 is the form without one
		}
	case v != stateVersion:
		d.fail(fmt.Sprintf("version %d, want %d or %d", v, stateVersion, stateVersionApp))
	}
	n.Kind = metric.Kind(d.byte("kind"))
	if d.err == nil && n.Kind != metric.Counter && n.Kind != metric.Sample && n.Kind != metric.Measure {
		d.fail(fmt.Sprintf("unknown kind %d", n.Kind))
	}
	n.Name = d.string("name")
	n.Source = d.string("source")
	n.Unit = d.string("unit")
	count := d.uvarint("count")
	if count > math.MaxInt64 {
		d.fail("count overflows")
	}
	n.count = int64(count)
	n.sum = d.float("sum")
	n.min = d.float("min")
	n.max = d.float("max")
	n.sumSq = d.float("sum of squares")
	n.last = d.float("last")
	n.lastTime = d.varint("last time")
	switch mode := d.byte("mode"); {
	case d.err != nil:
	case mode == modeRaw:
		k := d.uvarint("value count")
		switch {
		case d.err != nil:
		case n.Kind != metric.Measure && k != 0:
			d.fail(fmt.Sprintf("%d raw values for a %s series", k, n.Kind))
		case n.Kind == metric.Measure && k != count:
			d.fail(fmt.Sprintf("%d raw values for count %d", k, count))
		case k > ExactLimit:
			d.fail(fmt.Sprintf("%d raw values exceed %d", k, ExactLimit))
		default:
			n.values = make([]float64, k)
			for i := range n.values {
				n.values[i] = d.float("value")
			}
		}
	case mode == modeSketch:
		if n.Kind != metric.Measure {
			d.fail(fmt.Sprintf("sketch for a %s series", n.Kind))
			break
		}
		n.sketch = d.sketch(count)
	default:
		d.fail(fmt.Sprintf("unknown mode %d", mode))
	}
	if d.err == nil && d.off != len(d.b) {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.b)-d.off))
	}
	if d.err != nil {
		return d.err
	}
	*s = n
	return nil
}
