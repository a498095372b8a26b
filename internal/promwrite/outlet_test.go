package promwrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/outlet"
)

// receiver is a remote-write endpoint that decodes every request and answers
// with the next status of its script (200 when the script is used up).
type receiver struct {
	t      *testing.T
	mu     sync.Mutex
	script []int
	body   string // response body for non-2xx answers
	reqs   []*http.Request
	got    [][]string // decoded series of each accepted request
	calls  int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rc.t.Errorf("receiver: read body: %v", err)
	}
	series, err := decodeBody(body)
	if err != nil {
		rc.t.Errorf("receiver: %v", err)
	}
	var strs []string
	for _, s := range series {
		strs = append(strs, s.String())
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.calls++
	rc.reqs = append(rc.reqs, r)
	status := http.StatusOK
	if len(rc.script) > 0 {
		status, rc.script = rc.script[0], rc.script[1:]
	}
	if status/100 == 2 {
		rc.got = append(rc.got, strs)
		w.WriteHeader(status)
		return
	}
	http.Error(w, rc.body, status)
}

func (rc *receiver) accepted() [][]string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([][]string(nil), rc.got...)
}

func startReceiver(t *testing.T, script ...int) (*receiver, *httptest.Server) {
	rc := &receiver{t: t, script: script}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv
}

// fastQueue retries at once, so fault tests need no sleeps, and its clock
// stands just after t0, so the 2024 buckets are not too old.
var fastQueue = outlet.QueueConfig{
	Backoff: func(int) time.Duration { return time.Millisecond },
	Now:     func() time.Time { return t0.Add(5 * time.Minute) },
}

func newTestOutlet(t *testing.T, cfg Config) (*Outlet, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))
	if cfg.Queue.Backoff == nil {
		cfg.Queue = fastQueue
	}
	o, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return o, &logs
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func closeOutlet(t *testing.T, o *Outlet) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestOutletDeliversWithHeaders(t *testing.T) {
	rc, srv := startReceiver(t)
	o, _ := newTestOutlet(t, Config{
		URL: srv.URL + "/api/v1/write", User: "123456", Password: "glc_secret",
		Headers: map[string]string{"X-Scope-OrgID": "tenant1"},
		Tags:    map[string]string{"app": "shop"}, MaxSeriesPerRequest: 2,
	})
	o.Write(bucket(t0,
		aggregate.Series{Name: "hits", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 2},
		aggregate.Series{Name: "hits", Source: "web.2", Kind: metric.Counter, Count: 1, Sum: 3},
		aggregate.Series{Name: "mem", Source: "web.1", Unit: "MB", Kind: metric.Sample, Count: 1, Last: 2},
	))
	o.Write(bucket(t0.Add(time.Minute),
		aggregate.Series{Name: "hits", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 4},
	))
	closeOutlet(t, o)

	want := [][]string{
		{`hits_total{app="shop",source="web.1"} 2 @1714564860000`, `hits_total{app="shop",source="web.2"} 3 @1714564860000`},
		{`mem_bytes{app="shop",source="web.1"} 2097152 @1714564860000`},
		{`hits_total{app="shop",source="web.1"} 6 @1714564920000`},
	}
	if got := rc.accepted(); strings.Join(flatten(got), "\n") != strings.Join(flatten(want), "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(flatten(got), "\n"), strings.Join(flatten(want), "\n"))
	}
	r := rc.reqs[0]
	wantHeaders := map[string]string{
		"Content-Encoding":                  "snappy",
		"Content-Type":                      "application/x-protobuf",
		"X-Prometheus-Remote-Write-Version": "0.1.0",
		"User-Agent":                        UserAgent,
		"X-Scope-Orgid":                     "tenant1",
		"Authorization":                     "Basic MTIzNDU2OmdsY19zZWNyZXQ=", // 123456:glc_secret
	}
	for k, v := range wantHeaders {
		if got := r.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if r.Method != http.MethodPost || r.URL.Path != "/api/v1/write" {
		t.Errorf("request %s %s", r.Method, r.URL.Path)
	}
	st := o.Stats()
	if st.Buckets != 2 || st.Series != 4 || st.Samples != 4 || st.Requests != 3 || st.Queue.Sent != 3 ||
		st.Queue.SentMeasurements != 4 || st.Tracked != 3 || st.Rejected != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestOutletBearerToken(t *testing.T) {
	rc, srv := startReceiver(t)
	o, _ := newTestOutlet(t, Config{URL: srv.URL, BearerToken: "tok3n"})
	o.Write(bucket(t0, aggregate.Series{Name: "g", Kind: metric.Sample, Count: 1, Last: 1}))
	closeOutlet(t, o)
	if got := rc.reqs[0].Header.Get("Authorization"); got != "Bearer tok3n" {
		t.Fatalf("Authorization %q", got)
	}
}

func TestOutletFaults(t *testing.T) {
	cases := map[string]struct {
		script                                      []int
		calls, delivered                            int
		sent, failed, dropped, rejected, serverErrs int64
		unauthorized                                int64
		logHas                                      string
	}{
		"500 then OK: delivered once": {script: []int{500}, calls: 2, delivered: 1, sent: 1, failed: 1, serverErrs: 1},
		"429 then OK: retried":        {script: []int{429, 429}, calls: 3, delivered: 1, sent: 1, failed: 2, serverErrs: 2},
		"401 then OK: kept, retried":  {script: []int{401}, calls: 2, delivered: 1, sent: 1, failed: 1, unauthorized: 1},
		"400: dropped and counted": {script: []int{400}, calls: 1, delivered: 0, failed: 1, dropped: 1, rejected: 1,
			logHas: `out of order sample`},
		"413: dropped": {script: []int{413}, calls: 1, delivered: 0, failed: 1, dropped: 1, rejected: 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rc, srv := startReceiver(t, tc.script...)
			rc.body = "out of order sample; Authorization: Basic dTpwYXNzd29yZDE= password1"
			o, logs := newTestOutlet(t, Config{URL: srv.URL + "/api/v1/write?api_key=k3y", User: "u", Password: "password1"})
			o.Write(bucket(t0, aggregate.Series{Name: "g", Source: "web.1", Kind: metric.Sample, Count: 1, Last: 1}))
			closeOutlet(t, o)
			st := o.Stats()
			if rc.calls != tc.calls || len(rc.accepted()) != tc.delivered {
				t.Errorf("calls %d delivered %d, want %d %d", rc.calls, len(rc.accepted()), tc.calls, tc.delivered)
			}
			if st.Queue.Sent != tc.sent || st.Queue.Failed != tc.failed || st.Queue.Dropped != tc.dropped ||
				st.Queue.DroppedPermanent != tc.dropped || st.Rejected != tc.rejected || st.ServerErrors != tc.serverErrs ||
				st.Queue.Unauthorized != tc.unauthorized {
				t.Errorf("stats %+v", st)
			}
			if tc.dropped > 0 && st.Queue.DroppedMeasurements != 1 {
				t.Errorf("dropped measurements %d, want 1", st.Queue.DroppedMeasurements)
			}
			l := logs.String()
			if tc.logHas != "" && !strings.Contains(l, tc.logHas) {
				t.Errorf("log lacks %q:\n%s", tc.logHas, l)
			}
			for _, secret := range []string{"password1", "dTpwYXNzd29yZDE=", "k3y"} {
				if strings.Contains(l, secret) {
					t.Errorf("log contains secret %q:\n%s", secret, l)
				}
			}
		})
	}
}

func TestSendErrors(t *testing.T) {
	_, srv := startReceiver(t, 400, 503, 403)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	cases := map[string]struct {
		url       string
		is        error
		want      string
		permanent bool
	}{
		"400": {url: srv.URL + "/w?token=s3cret", is: outlet.ErrPermanent,
			want: `promwrite: POST ` + srv.URL + `/w: 1 samples: HTTP 400 Bad Request: "nope [redacted] [redacted]": permanent failure`},
		"503": {url: srv.URL + "/w?token=s3cret",
			want: `promwrite: POST ` + srv.URL + `/w: 1 samples: HTTP 503 Service Unavailable: "nope [redacted] [redacted]"`},
		"403": {url: srv.URL + "/w?token=s3cret", is: outlet.ErrUnauthorized,
			want: `promwrite: POST ` + srv.URL + `/w: 1 samples: HTTP 403 Forbidden: "nope [redacted] [redacted]": unauthorized`},
		"connection refused": {url: dead.URL + "/w?token=s3cret", want: `promwrite: POST ` + dead.URL + `/w: 1 samples: dial tcp`},
	}
	for _, name := range []string{"400", "503", "403", "connection refused"} { // the script is ordered
		tc := cases[name]
		t.Run(name, func(t *testing.T) {
			cfg, _, err := Config{URL: tc.url, BearerToken: "b34rer"}.check()
			if err != nil {
				t.Fatal(err)
			}
			s := newSender(cfg)
			srvBody := "nope b34rer token=s3cret"
			srv.Config.Handler.(*receiver).body = srvBody
			err = s.Send(context.Background(), &outlet.Batch{Body: snappy.Encode(nil, nil), N: 1})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error\n%s\nwant prefix\n%s", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error does not wrap %v", tc.is)
			}
			if errors.Is(err, outlet.ErrPermanent) != (tc.is == outlet.ErrPermanent) {
				t.Errorf("ErrPermanent: %v", errors.Is(err, outlet.ErrPermanent))
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "b34rer") {
				t.Errorf("error contains a secret: %v", err)
			}
		})
	}
}

func TestWriteAfterClose(t *testing.T) {
	rc, srv := startReceiver(t)
	o, _ := newTestOutlet(t, Config{URL: srv.URL})
	closeOutlet(t, o)
	o.Write(bucket(t0, aggregate.Series{Name: "g", Kind: metric.Sample, Count: 1, Last: 1}))
	if st := o.Stats(); st.ClosedDrops != 1 || st.Buckets != 1 || st.Samples != 0 || rc.calls != 0 {
		t.Fatalf("stats %+v calls %d", st, rc.calls)
	}
}

// TestConcurrentWrites runs Write from several goroutines (for -race) and
// checks that the final counter total holds every bucket's sum.
func TestConcurrentWrites(t *testing.T) {
	rc, srv := startReceiver(t)
	o, _ := newTestOutlet(t, Config{URL: srv.URL})
	const writers, each = 4, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				o.Write(bucket(t0.Add(time.Duration(w*each+i)*time.Minute),
					aggregate.Series{Name: "c", Source: "web.1", Kind: metric.Counter, Count: 1, Sum: 1}))
				_ = o.Stats()
			}
		}()
	}
	wg.Wait()
	closeOutlet(t, o)
	st := o.Stats()
	// Buckets arrive out of order across goroutines: the late ones are folded
	// into the total but not sent.
	if st.Buckets != writers*each || st.Samples+st.Late != writers*each || st.Queue.Sent != st.Samples {
		t.Fatalf("stats %+v", st)
	}
	// Sent totals grow with their timestamps, and the running total holds
	// every bucket.
	var prevV float64
	var prevTS int64
	for _, req := range rc.accepted() {
		for _, line := range req {
			var v float64
			var ts int64
			if _, err := fmt.Sscanf(line, `c_total{source="web.1"} %g @%d`, &v, &ts); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			if ts <= prevTS || v <= prevV {
				t.Errorf("sample %v @%d after %v @%d", v, ts, prevV, prevTS)
			}
			prevV, prevTS = v, ts
		}
	}
	var total float64
	o.Base.Stats(func() { total = o.enc.tr.Peek(seriesKey{name: "c", source: "web.1", kind: metric.Counter}).total })
	if total != writers*each {
		t.Errorf("running total %v, want %d", total, writers*each)
	}
}
