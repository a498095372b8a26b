package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dynometrics/dynometrics/internal/aggregate"
)

// blobVersion is the first byte of an encoded list of states.
const blobVersion = 1

// maxBlobStates bounds the states one blob may claim, against a corrupt
// length.
const maxBlobStates = 1 << 24

// errBlob is wrapped by every decoding error.
var errBlob = errors.New("store: bad blob")

// encodeStates appends version, count, then each state as length and
// aggregate.State.MarshalBinary.
func encodeStates(dst []byte, states []*aggregate.State) ([]byte, error) {
	dst = append(dst, blobVersion)
	dst = binary.AppendUvarint(dst, uint64(len(states)))
	for _, st := range states {
		b, err := st.MarshalBinary()
		if err != nil {
			return nil, err
		}
		dst = binary.AppendUvarint(dst, uint64(len(b)))
		dst = append(dst, b...)
	}
	return dst, nil
}

// decodeStates decodes what encodeStates wrote.
func decodeStates(b []byte) ([]*aggregate.State, error) {
	if len(b) == 0 || b[0] != blobVersion {
		return nil, fmt.Errorf("%w: unknown version", errBlob)
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > maxBlobStates || n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: bad state count", errBlob)
	}
	b = b[k:]
	out := make([]*aggregate.State, 0, n)
	for i := range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, fmt.Errorf("%w: state %d: bad length", errBlob, i)
		}
		st := new(aggregate.State)
		if err := st.UnmarshalBinary(b[k : k+int(l)]); err != nil {
			return nil, fmt.Errorf("%w: state %d: %w", errBlob, i, err)
		}
		out = append(out, st)
		b = b[k+int(l):]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errBlob, len(b))
	}
	return out, nil
}

// encodeBucket encodes a merged bucket for the feed: start (unix seconds),
// period (seconds), then its states.
func encodeBucket(start, period int64, states []*aggregate.State) ([]byte, error) {
	b := binary.AppendVarint(nil, start)
	b = binary.AppendUvarint(b, uint64(period))
	return encodeStates(b, states)
}

func decodeBucket(b []byte) (start, period int64, states []*aggregate.State, err error) {
	start, k := binary.Varint(b)
	if k <= 0 {
		return 0, 0, nil, fmt.Errorf("%w: bad start", errBlob)
	}
	b = b[k:]
	p, k := binary.Uvarint(b)
	if k <= 0 || p == 0 || p > 86400 {
		return 0, 0, nil, fmt.Errorf("%w: bad period", errBlob)
	}
	states, err = decodeStates(b[k:])
	return start, int64(p), states, err
}
