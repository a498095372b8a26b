package otlp

import (
	"cmp"
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/l2met"
	"github.com/dynometrics/dynometrics/internal/metric"
	commonpb "go.opentelemetry.io/proto/slim/otlp/common/v1"
)

// DefaultSourceAttributes is the default of Config.SourceAttributes as the
// worker sets it: heroku.dyno.name, the dyno's name (web.1 on Cedar,
// web-5d8f7c9b4-x2k9p on Fir) that Heroku's OpenTelemetry attribute
// reference names and puts on the resource of a Fir app's signals. Heroku's
// semantic-convention mapping also sets service.instance.id, but that is the
// dyno's UUID (HEROKU_DYNO_ID), new for every dyno start: a poor source.
const DefaultSourceAttributes = "heroku.dyno.name"

// DynoNames says how Fir dyno names are kept in sources.
type DynoNames uint8

const (
	// DynoFull keeps Fir dyno names whole (web-5d8f7c9b4-x2k9p): one series
	// per dyno, new ones after every deploy.
	DynoFull DynoNames = iota
	// DynoType reduces Fir dyno names to their process type (web): one series
	// per process type that survives deploys. The samples of several dynos
	// of one type then share a series, so the last one by time wins.
	DynoType
)

// ParseDynoNames parses "full" or "type"; "" is "full".
func ParseDynoNames(s string) (DynoNames, error) {
	switch s {
	case "full", "":
		return DynoFull, nil
	case "type":
		return DynoType, nil
	}
	return 0, fmt.Errorf("%q: want full or type", s)
}

// String returns "full" or "type".
func (d DynoNames) String() string {
	if d == DynoType {
		return "type"
	}
	return "full"
}

// ProcessType returns the process type of a Fir dyno name,
// web-5d8f7c9b4-x2k9p → web: a name of the form TYPE-HASH-SUFFIX where HASH
// is 1 to 16 and SUFFIX 5 lower-case letters or digits (a Kubernetes pod
// name, which Fir dynos are). Other names (web.1, router, DATABASE) are
// returned unchanged. It does not allocate.
func ProcessType(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 || len(name)-i-1 != 5 || !lowerAlnum(name[i+1:]) {
		return name
	}
	j := strings.LastIndexByte(name[:i], '-')
	if j <= 0 || i-j-1 < 1 || i-j-1 > 16 || !lowerAlnum(name[j+1:i]) {
		return name
	}
	return name[:j]
}

func lowerAlnum(s string) bool {
	return !strings.ContainsFunc(s, func(c rune) bool { return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') })
}

// typeSink reduces the Fir dyno names in sources to process types before
// handing measurements on. The Sink contract forbids modifying the caller's
// slice, so rewritten measurements go through a pooled copy.
type typeSink struct {
	next input.Sink
	pool sync.Pool // of *[]metric.Measurement
}

func (t *typeSink) Add(ms []metric.Measurement) {
	i := 0
	for i < len(ms) && ProcessType(ms[i].Source) == ms[i].Source {
		i++
	}
	if i == len(ms) {
		t.next.Add(ms)
		return
	}
	bp, _ := t.pool.Get().(*[]metric.Measurement)
	if bp == nil {
		bp = new([]metric.Measurement)
	}
	buf := append((*bp)[:0], ms...)
	for k := i; k < len(buf); k++ {
		buf[k].Source = ProcessType(buf[k].Source)
	}
	t.next.Add(buf)
	clear(buf)
	*bp = buf[:0]
	t.pool.Put(bp)
}

// source returns the value of the preferred source attribute in attrs, or
// "". Only string values count.
func (r *Receiver) source(attrs []*commonpb.KeyValue) string {
	best, pref := "", -1
	for _, kv := range attrs {
		p, ok := r.sourceKeys[kv.GetKey()]
		if !ok || pref >= 0 && p >= pref {
			continue
		}
		s, ok := kv.GetValue().GetValue().(*commonpb.AnyValue_StringValue)
		if !ok || s.StringValue == "" || len(s.StringValue) > l2met.MaxSourceLen {
			continue
		}
		best, pref = s.StringValue, p
		if p == 0 {
			break
		}
	}
	return best
}

// sourceOf returns the source of a record or point: the first of
// SourceAttributes present on it, else on its resource.
func (r *Receiver) sourceOf(attrs []*commonpb.KeyValue, resource string) string {
	return cmp.Or(r.source(attrs), resource)
}

// bytesOf returns the bytes of s without copying. The l2met parser only reads
// its input (l2met.Line: "Byte slices are only read during Parse") and
// interns what it keeps, so a log body or attribute value of a decoded
// request is parsed without a copy per record.
func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
