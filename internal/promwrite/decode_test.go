package promwrite

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"
)

// decodedSeries is one TimeSeries of a decoded WriteRequest.
type decodedSeries struct {
	Labels  [][2]string // in wire order
	Samples [][2]float64
}

// String formats the series like the exposition format, labels in wire order:
// name{a="b"} value @ts.
func (d decodedSeries) String() string {
	var b strings.Builder
	var rest []string
	for _, l := range d.Labels {
		if l[0] == labelName {
			b.WriteString(l[1])
			continue
		}
		rest = append(rest, fmt.Sprintf("%s=%q", l[0], l[1]))
	}
	b.WriteString("{" + strings.Join(rest, ",") + "}")
	for _, s := range d.Samples {
		fmt.Fprintf(&b, " %s @%d", strconv.FormatFloat(s[0], 'f', -1, 64), int64(s[1]))
	}
	return b.String()
}

// decodeBody undoes snappy and decodes a remote-write 1.0 WriteRequest with
// a decoder written independently of the encoder: field by field, refusing
// unknown fields and wire types.
func decodeBody(body []byte) ([]decodedSeries, error) {
	pb, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	var out []decodedSeries
	err = fields(pb, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != 1 || typ != protowire.BytesType {
			return fmt.Errorf("WriteRequest: unexpected field %d type %d", num, typ)
		}
		var ts decodedSeries
		err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			switch {
			case num == 1 && typ == protowire.BytesType:
				var l [2]string
				err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
					if (num != 1 && num != 2) || typ != protowire.BytesType {
						return fmt.Errorf("Label: unexpected field %d type %d", num, typ)
					}
					l[num-1] = string(v)
					return nil
				})
				ts.Labels = append(ts.Labels, l)
				return err
			case num == 2 && typ == protowire.BytesType:
				var s [2]float64
				err := fields(v, func(num protowire.Number, typ protowire.Type, _ []byte, n uint64) error {
					switch {
					case num == 1 && typ == protowire.Fixed64Type:
						s[0] = math.Float64frombits(n)
					case num == 2 && typ == protowire.VarintType:
						s[1] = float64(int64(n))
					default:
						return fmt.Errorf("Sample: unexpected field %d type %d", num, typ)
					}
					return nil
				})
				ts.Samples = append(ts.Samples, s)
				return err
			}
			return fmt.Errorf("TimeSeries: unexpected field %d type %d", num, typ)
		})
		out = append(out, ts)
		return err
	})
	return out, err
}

// fields calls f for every field of the message b: bytes fields get v,
// varint and fixed64 fields get n.
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error) error {
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		var v []byte
		var n uint64
		switch typ {
		case protowire.BytesType:
			v, l = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			n, l = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			n, l = protowire.ConsumeFixed64(b)
		default:
			return fmt.Errorf("field %d: unsupported wire type %d", num, typ)
		}
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		if err := f(num, typ, v, n); err != nil {
			return err
		}
	}
	return nil
}
