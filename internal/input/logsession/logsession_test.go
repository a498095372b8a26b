package logsession

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/inputtest"
	"github.com/dynometrics/dynometrics/internal/testproc"
)

const apiKey = "hrku-0123456789abcdef-SECRET"

// fakeAPI is a Platform API and log stream server on 127.0.0.1. Each POST to
// log-sessions takes the next status from sessions; 201 answers point to
// /stream/N, where streams[N] says what that stream does.
type fakeAPI struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	sessions []int // status per POST; 201 when exhausted
	posts    int
	streams  map[string]func(w http.ResponseWriter, r *http.Request)
	errs     []string
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{t: t, streams: map[string]func(http.ResponseWriter, *http.Request){}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) fail(format string, args ...any) {
	f.mu.Lock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/apps/my-app/log-sessions":
		if got := r.Header.Get("Authorization"); got != "Bearer "+apiKey {
			f.fail("Authorization = %q", got)
		}
		if got := r.Header.Get("Accept"); got != "application/vnd.heroku+json; version=3" {
			f.fail("Accept = %q", got)
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body["tail"] != true || body["lines"] != float64(0) {
			f.fail("body = %v (%v)", body, err)
		}
		f.mu.Lock()
		n := f.posts
		f.posts++
		status := http.StatusCreated
		if n < len(f.sessions) {
			status = f.sessions[n]
		}
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch status {
		case http.StatusCreated:
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"id":"s%d","logplex_url":"%s/stream/%d?srv=1&sig=STREAMSECRET","created_at":"2024-05-01T12:00:00Z"}`, n, f.srv.URL, n)
		case http.StatusUnauthorized:
			w.WriteHeader(status)
			io.WriteString(w, `{"id":"unauthorized","message":"Invalid credentials provided."}`)
		default:
			w.WriteHeader(status)
			io.WriteString(w, `{"id":"internal_server_error","message":"Internal server error."}`)
		}
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/stream/"):
		if r.URL.Query().Get("sig") != "STREAMSECRET" {
			f.fail("stream URL lost its query: %s", r.URL)
		}
		f.mu.Lock()
		h := f.streams[strings.TrimPrefix(r.URL.Path, "/stream/")]
		f.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	default:
		f.fail("unexpected %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	}
}

func (f *fakeAPI) check() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.errs {
		f.t.Error("fake API: " + e)
	}
}

// lines writes text lines and flushes them, as a log stream does.
func lines(ls ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for _, l := range ls {
			io.WriteString(w, l+"\n")
			w.(http.Flusher).Flush()
		}
	}
}

// linesThenWait writes lines, then holds the stream open until the client goes.
func linesThenWait(ls ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		lines(ls...)(w, r)
		<-r.Context().Done()
	}
}

type harness struct {
	tl     *Tailer
	rec    *inputtest.Recorder
	logs   *testproc.LimitedBuffer
	mu     sync.Mutex
	sleeps []time.Duration
}

func newHarness(t *testing.T, f *fakeAPI, cfg Config) *harness {
	h := &harness{rec: inputtest.NewRecorder(), logs: &testproc.LimitedBuffer{}}
	p, err := input.NewProcessor(h.rec, input.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.APIKey, cfg.App, cfg.BaseURL = apiKey, "my-app", f.srv.URL
	cfg.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if h.tl, err = New(p, cfg); err != nil {
		t.Fatal(err)
	}
	h.tl.sleep = func(ctx context.Context, d time.Duration) error {
		h.mu.Lock()
		h.sleeps = append(h.sleeps, d)
		h.mu.Unlock()
		return ctx.Err()
	}
	return h
}

func (h *harness) run(t *testing.T, until func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.tl.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for !until() {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("condition not met; logs:\n%s", h.logs.String())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if strings.Contains(h.logs.String(), apiKey) || strings.Contains(h.logs.String(), "STREAMSECRET") {
		t.Errorf("logs show a secret:\n%s", h.logs.String())
	}
}

func (h *harness) backoffs() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.sleeps)
}

func TestTail(t *testing.T) {
	f := newFakeAPI(t)
	f.sessions = []int{500, 201, 201}
	f.streams["1"] = lines(
		"2024-05-01T12:00:00.200000+00:00 app[web.1]: count#req=1 measure#db.latency=4ms",
		"2024-05-01T12:00:00.250000+00:00 app[web.1]: Started GET \"/\"",
	)
	f.streams["2"] = linesThenWait("2024-05-01T12:00:00.300000+00:00 app[web.2]: sample#queue.depth=7")
	h := newHarness(t, f, Config{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	h.run(t, func() bool { return h.rec.Len() == 3 })
	f.check()
	want := []string{
		"2024-05-01T12:00:00.2Z web.1 count req=1",
		"2024-05-01T12:00:00.2Z web.1 measure db.latency=4ms",
		"2024-05-01T12:00:00.3Z web.2 sample queue.depth=7",
	}
	if got := h.rec.Lines(); !slices.Equal(got, want) {
		t.Errorf("measurements:\n got %q\nwant %q", got, want)
	}
	st := h.tl.Stats()
	if st != (Stats{Sessions: 2, SessionErrors: 1, Streams: 2, StreamEnds: 1}) {
		t.Errorf("stats = %+v", st)
	}
	// 500 → first backoff in [50ms, 100ms]; short stream ended → [100ms, 200ms].
	b := h.backoffs()
	if len(b) != 2 || b[0] < 50*time.Millisecond || b[0] > 100*time.Millisecond || b[1] < 100*time.Millisecond || b[1] > 200*time.Millisecond {
		t.Errorf("backoffs = %v, want one in [50ms,100ms] then one in [100ms,200ms]", b)
	}
	if !strings.Contains(h.logs.String(), `500 Internal Server Error (id \"internal_server_error\")`) {
		t.Errorf("logs lack the API error:\n%s", h.logs.String())
	}
}

// TestBackoffGrowsAndResets checks exponential growth up to MaxBackoff while
// nothing works, and the reset after a healthy stream.
func TestBackoffGrowsAndResets(t *testing.T) {
	f := newFakeAPI(t)
	f.sessions = []int{503, 503, 503, 503, 503, 201, 201}
	f.streams["5"] = lines("2024-05-01T12:00:00.200000+00:00 app[web.1]: count#req=1")
	f.streams["6"] = linesThenWait()
	h := newHarness(t, f, Config{MinBackoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond, HealthyAfter: time.Nanosecond})
	h.run(t, func() bool { return h.tl.Stats().Streams == 2 })
	f.check()
	b := h.backoffs()
	bounds := [][2]time.Duration{{50, 100}, {100, 200}, {200, 400}, {200, 400}, {200, 400}, {50, 100}}
	if len(b) != len(bounds) {
		t.Fatalf("backoffs = %v, want %d", b, len(bounds))
	}
	for i, bd := range bounds {
		if b[i] < bd[0]*time.Millisecond || b[i] > bd[1]*time.Millisecond {
			t.Errorf("backoff %d = %v, want in [%dms, %dms]", i, b[i], bd[0], bd[1])
		}
	}
}

func TestUnauthorized(t *testing.T) {
	f := newFakeAPI(t)
	f.sessions = []int{401, 401}
	f.streams["2"] = linesThenWait()
	h := newHarness(t, f, Config{})
	h.run(t, func() bool { return h.tl.Stats().Streams == 1 })
	if st := h.tl.Stats(); st.Unauthorized != 2 || st.SessionErrors != 2 {
		t.Errorf("stats = %+v", st)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, `logsession: unauthorized: creating log session for my-app: 401 Unauthorized (id \"unauthorized\") (check HEROKU_API_KEY)`) {
		t.Errorf("logs lack the unauthorized error:\n%s", logs)
	}
}

func TestStreamFailures(t *testing.T) {
	f := newFakeAPI(t)
	// Stream 0 does not exist (404), stream 1 sends nothing (idle), stream 2 works.
	f.streams["1"] = linesThenWait()
	f.streams["2"] = linesThenWait("2024-05-01T12:00:00.200000+00:00 app[web.1]: count#req=1")
	h := newHarness(t, f, Config{IdleTimeout: 100 * time.Millisecond})
	h.run(t, func() bool { return h.rec.Len() == 1 })
	if st := h.tl.Stats(); st != (Stats{Sessions: 3, Streams: 2, StreamErrors: 1, IdleTimeouts: 1}) {
		t.Errorf("stats = %+v", st)
	}
	logs := h.logs.String()
	host := strings.TrimPrefix(f.srv.URL, "http://")
	for _, want := range []string{"stream on " + host + ": 404 Not Found", "stream on " + host + ": nothing for 100ms"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

func TestNetworkErrorRedacted(t *testing.T) {
	f := newFakeAPI(t)
	f.srv.Close() // connection refused
	h := newHarness(t, f, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	h.tl.sleep = func(context.Context, time.Duration) error { cancel(); return ctx.Err() }
	if err := h.tl.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "creating log session for my-app: Post "+strings.TrimPrefix(f.srv.URL, "http://")) {
		t.Errorf("logs lack the redacted error:\n%s", logs)
	}
	if strings.Contains(logs, apiKey) {
		t.Errorf("logs show the key:\n%s", logs)
	}
}

func TestDelay(t *testing.T) {
	p, _ := input.NewProcessor(inputtest.NewRecorder(), input.Config{})
	tl, err := New(p, Config{APIKey: "k", App: "a", MinBackoff: time.Second, MaxBackoff: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for attempt, want := range map[int]time.Duration{0: time.Second, 1: 2 * time.Second, 3: 8 * time.Second, 4: 10 * time.Second, 40: 10 * time.Second, 1000: 10 * time.Second} {
		for range 100 {
			if d := tl.delay(attempt); d < want/2 || d > want {
				t.Fatalf("delay(%d) = %v, want in [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
}

func TestNew(t *testing.T) {
	p, _ := input.NewProcessor(inputtest.NewRecorder(), input.Config{})
	for name, cfg := range map[string]Config{
		"no key":           {App: "a"},
		"no app":           {APIKey: "k"},
		"relative base":    {APIKey: "k", App: "a", BaseURL: "api.heroku.com"},
		"ftp base":         {APIKey: "k", App: "a", BaseURL: "ftp://api.heroku.com"},
		"negative backoff": {APIKey: "k", App: "a", MinBackoff: -1},
	} {
		if _, err := New(p, cfg); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "k\"") {
			t.Errorf("%s: error shows the key: %v", name, err)
		}
	}
	tl, err := New(p, Config{APIKey: "k", App: "my app"})
	if err != nil {
		t.Fatal(err)
	}
	if tl.sessions != "https://api.heroku.com/apps/my%20app/log-sessions" {
		t.Errorf("sessions URL = %q", tl.sessions)
	}
}
