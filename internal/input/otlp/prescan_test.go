package otlp

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"

	logspb "go.opentelemetry.io/proto/slim/otlp/logs/v1"
	metricspb "go.opentelemetry.io/proto/slim/otlp/metrics/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// reflectCount counts the messages of a decoded message, itself included.
func reflectCount(m protoreflect.Message) int {
	n := 1
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			for i := 0; i < v.List().Len(); i++ {
				n += reflectCount(v.List().Get(i).Message())
			}
		case fd.IsMap():
		case fd.Kind() == protoreflect.MessageKind:
			n += reflectCount(v.Message())
		}
		return true
	})
	return n
}

// TestCountMessages: the count made on the wire, before decoding, is the
// number of messages decoding makes (protobuf), and an upper bound of it
// (JSON).
func TestCountMessages(t *testing.T) {
	for _, tc := range []struct {
		file string
		m    proto.Message
	}{{"testdata/heroku-logs.json", &logspb.LogsData{}}, {"testdata/heroku-metrics.json", &metricspb.MetricsData{}}} {
		js, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		if err := protojson.Unmarshal(js, tc.m); err != nil {
			t.Fatal(err)
		}
		want := reflectCount(tc.m.ProtoReflect())
		pb := marshal(t, tc.m)
		if got := countProto(pb, tc.m.ProtoReflect().Descriptor(), MaxMessages); got != want {
			t.Errorf("%s: countProto %d, decoded messages %d", tc.file, got, want)
		}
		if got := countJSON(js); got < want {
			t.Errorf("%s: countJSON %d below the decoded messages %d", tc.file, got, want)
		}
	}
	if got := countJSON([]byte(`{"a":"{\"{","b":[{}]}`)); got != 2 {
		t.Errorf("countJSON counts braces in strings: %d", got)
	}
}

// TestManyEmptyRecords: a body of hundreds of thousands of empty records
// (2 bytes each on the wire, some 150 once decoded) is refused with 413
// before it is decoded, in protobuf and in JSON.
func TestManyEmptyRecords(t *testing.T) {
	n := MaxMessages + 10
	var recs []byte
	for range n {
		recs = protowire.AppendTag(recs, 2, protowire.BytesType) // ScopeLogs.log_records
		recs = protowire.AppendVarint(recs, 0)
	}
	wrap := func(field protowire.Number, inner []byte) []byte {
		b := protowire.AppendTag(nil, field, protowire.BytesType)
		return protowire.AppendBytes(b, inner)
	}
	pb := wrap(1, wrap(2, recs)) // LogsData.resource_logs { ResourceLogs.scope_logs { … } }
	js := []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[` + strings.TrimSuffix(strings.Repeat(`{},`, n), ",") + `]}]}]}`)
	for name, tc := range map[string]struct {
		ctype string
		body  []byte
	}{"protobuf": {"application/x-protobuf", pb}, "json": {"application/json", js}} {
		t.Run(name, func(t *testing.T) {
			if len(tc.body) > MaxBodyBytes {
				t.Fatalf("body of %d bytes: the test must stay under MaxBodyBytes", len(tc.body))
			}
			r, c := newTestReceiver(t, nil)
			w := post(r, LogsPath, tc.ctype, "gzip", gz(t, tc.body))
			if w.Code != http.StatusRequestEntityTooLarge || !bytes.Contains(w.Body.Bytes(), []byte("messages")) {
				t.Fatalf("status %d %q", w.Code, w.Body)
			}
			_ = r.Close(t.Context())
			if st := r.Stats(); st.TooManyMsgs != 1 || st.LogRecords != 0 || len(c.all()) != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}
