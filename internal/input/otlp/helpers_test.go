package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/metric"
)

const (
	testUser = "drain"
	testPass = "s3cret-pass"
)

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// capture is a Sink that keeps copies of what it receives.
type capture struct {
	mu sync.Mutex
	ms []metric.Measurement
}

func (c *capture) Add(ms []metric.Measurement) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ms = append(c.ms, ms...)
}

func (c *capture) all() []metric.Measurement {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ms)
}

// newTestReceiver returns a Receiver feeding a capture, with one worker (so
// the order of measurements is the order of the requests) and a fixed clock.
func newTestReceiver(t testing.TB, mod func(*Config)) (*Receiver, *capture) {
	t.Helper()
	c := &capture{}
	cfg := Config{Sink: c, User: testUser, Password: testPass, SourceAttributes: []string{"heroku.dyno.name"}, Workers: 1,
		Now: func() time.Time { return testNow }}
	if mod != nil {
		mod(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r, c
}

// testNow is the receiver's clock in tests: 2024-05-01T12:00:10Z.
var testNow = time.Date(2024, 5, 1, 12, 0, 10, 0, time.UTC)

// post sends body to the receiver's path and returns the recorded answer.
func post(r *Receiver, path, contentType, encoding string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Authorization", basicAuth(testUser, testPass))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// describe prints measurements one per line, as the golden files hold them.
func describe(ms []metric.Measurement) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%s %s %s source=%q value=%s unit=%q", m.Time.Format(time.RFC3339Nano), m.Kind, m.Name, m.Source,
			strconv.FormatFloat(m.Value, 'f', -1, 64), m.Unit)
		if d := m.Dist; d != nil {
			fmt.Fprintf(&b, " dist=count:%d,sum:%s,min:%s,max:%s,bins:", d.Count, ff(d.Sum), ff(d.Min), ff(d.Max))
			for i, bin := range d.Bins {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "%s×%d", ff(bin.Value), bin.Count)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func ff(v float64) string { return strconv.FormatFloat(v, 'g', 10, 64) }
