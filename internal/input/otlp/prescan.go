package otlp

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MaxMessages bounds the messages (records, attributes, values, points…) of
// one decoded request. A message costs 2 bytes on the wire and about 150
// bytes once decoded, so without it a 4 MiB body of empty records would
// decode into some 300 MB; the body is counted before it is decoded, and a
// request over the bound gets 413. A batch of 8,192 log records with ten
// attributes each holds about 180,000.
const MaxMessages = 250000

// decodedWeight estimates the heap bytes a decoded message takes beyond its
// strings; the queue's MaxQueueBytes bounds body bytes plus messages times it.
const decodedWeight = 160

// countProto counts the messages in a protobuf body along md's schema (the
// root included), without decoding it: every length-delimited field that
// the schema says is a message is one, and is walked in turn. It stops early
// and returns a count over limit once limit is passed. Malformed wire data
// ends the walk: the decoder reports it.
func countProto(b []byte, md protoreflect.MessageDescriptor, limit int) int {
	n := 1
	walkProto(b, md, 0, &n, limit)
	return n
}

func walkProto(b []byte, md protoreflect.MessageDescriptor, depth int, n *int, limit int) bool {
	fields := md.Fields()
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return true
		}
		b = b[l:]
		if typ != protowire.BytesType {
			if l = protowire.ConsumeFieldValue(num, typ, b); l < 0 {
				return true
			}
			b = b[l:]
			continue
		}
		v, l := protowire.ConsumeBytes(b)
		if l < 0 {
			return true
		}
		b = b[l:]
		fd := fields.ByNumber(num)
		if fd == nil || fd.Kind() != protoreflect.MessageKind || depth >= MaxNesting {
			continue
		}
		if *n++; *n > limit {
			return false
		}
		if !walkProto(v, fd.Message(), depth+1, n, limit) {
			return false
		}
	}
	return true
}

// countJSON returns an upper bound of the messages in a JSON body: the
// objects outside strings (every message is an object; maps such as
// attributes are arrays of objects in OTLP/JSON).
func countJSON(b []byte) int {
	n := 0
	in := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case in:
			if c == '\\' {
				i++
			} else if c == '"' {
				in = false
			}
		case c == '"':
			in = true
		case c == '{':
			n++
		}
	}
	return n
}
