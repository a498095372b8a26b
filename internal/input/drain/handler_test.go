package drain_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/drain"
	"github.com/dynometrics/dynometrics/internal/input/inputtest"
	"github.com/dynometrics/dynometrics/internal/metric"
)

const (
	user = "drainuser"
	pass = "s3cret-drain-password"

	msgA = "<190>1 2024-05-01T12:00:00.200000+00:00 host app web.1 - count#req=1 measure#db.latency=4ms"
	msgB = "<190>1 2024-05-01T12:00:00.300000+00:00 host app web.2 - sample#queue.depth=7"
)

var (
	wantA = []string{
		"2024-05-01T12:00:00.2Z web.1 count req=1",
		"2024-05-01T12:00:00.2Z web.1 measure db.latency=4ms",
	}
	wantB = []string{"2024-05-01T12:00:00.3Z web.2 sample queue.depth=7"}
)

func frame(msg string) string { return strconv.Itoa(len(msg)+1) + " " + msg + "\n" }

// blockingSink records measurements, but only once release is closed; it
// signals entered when an Add starts.
type blockingSink struct {
	rec     *inputtest.Recorder
	entered chan struct{}
	release chan struct{}
}

func newBlockingSink() *blockingSink {
	return &blockingSink{rec: inputtest.NewRecorder(), entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (s *blockingSink) Add(ms []metric.Measurement) {
	s.entered <- struct{}{}
	<-s.release
	s.rec.Add(ms)
}

func newHandler(t testing.TB, sink input.Sink, cfg drain.Config) (*drain.Handler, *input.Processor) {
	t.Helper()
	p, err := input.NewProcessor(sink, input.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.User == "" && !cfg.InsecureNoAuth {
		cfg.User, cfg.Password = user, pass
	}
	h, err := drain.New(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return h, p
}

// post sends a drain POST through h and returns the response.
func post(h http.Handler, body, frameID string, mod ...func(*http.Request)) *http.Response {
	r := httptest.NewRequest(http.MethodPost, drain.LogsPath, strings.NewReader(body))
	r.SetBasicAuth(user, pass)
	r.Header.Set("Content-Type", "application/logplex-1")
	if frameID != "" {
		r.Header.Set("Logplex-Frame-Id", frameID)
	}
	for _, m := range mod {
		m(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func closeHandler(t *testing.T, h *drain.Handler) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestPostParsesAfterClose(t *testing.T) {
	rec := inputtest.NewRecorder()
	h, p := newHandler(t, rec, drain.Config{})
	body := frame(msgA) + "300 <190>1 2024-05-01T12:00:00+00:00 host app web.9 - count#lost=1\n" + frame(msgB)
	resp := post(h, body, "09C557EAFCFB6CF2740EE62F62971098", func(r *http.Request) { r.Header.Set("Logplex-Msg-Count", "3") })
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status = %d, want 204", resp.StatusCode)
	}
	closeHandler(t, h)
	if got, want := rec.Sorted(), slices.Concat(wantA, wantB); !slices.Equal(got, want) {
		t.Errorf("measurements:\n got %q\nwant %q", got, want)
	}
	if got, want := h.Stats(), (drain.Stats{Requests: 1, Accepted: 1, Bytes: uint64(len(body)), Processed: 1}); got != want {
		t.Errorf("stats:\n got %+v\nwant %+v", got, want)
	}
	if got := p.Stats(); got.MalformedFrames != 1 || got.Lines != 2 || got.Measurements != 3 {
		t.Errorf("processor stats = %+v", got)
	}
}

func TestResponses(t *testing.T) {
	const limit = 1000
	good := frame(msgA)
	atLimit := good + strings.Repeat("\n", limit-len(good)) // whitespace between frames is skipped
	overLimit := atLimit + "\n"
	chunked := func(r *http.Request) { r.ContentLength = -1; r.Header.Del("Content-Length") }
	cases := map[string]struct {
		method, path string
		body         string
		mod          []func(*http.Request)
		status       int
		header       map[string]string
		respBody     string
		stats        drain.Stats
	}{
		"accepted": {
			method: "POST", path: "/logs", body: good, status: 204,
			stats: drain.Stats{Requests: 1, Accepted: 1, Processed: 1, Bytes: uint64(len(good))},
		},
		"no credentials": {
			method: "POST", path: "/logs", body: good, status: 401,
			mod:    []func(*http.Request){func(r *http.Request) { r.Header.Del("Authorization") }},
			header: map[string]string{"WWW-Authenticate": `Basic realm="dynometrics drain", charset="UTF-8"`},
			stats:  drain.Stats{Requests: 1, Unauthorized: 1},
		},
		"wrong password": {
			method: "POST", path: "/logs", body: good, status: 401,
			mod:   []func(*http.Request){func(r *http.Request) { r.SetBasicAuth(user, pass+"x") }},
			stats: drain.Stats{Requests: 1, Unauthorized: 1},
		},
		"wrong user": {
			method: "POST", path: "/logs", body: good, status: 401,
			mod:   []func(*http.Request){func(r *http.Request) { r.SetBasicAuth("drainuse", pass) }},
			stats: drain.Stats{Requests: 1, Unauthorized: 1},
		},
		"bearer instead of basic": {
			method: "POST", path: "/logs", body: good, status: 401,
			mod:   []func(*http.Request){func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+pass) }},
			stats: drain.Stats{Requests: 1, Unauthorized: 1},
		},
		"body at limit": {
			method: "POST", path: "/logs", body: atLimit, status: 204,
			stats: drain.Stats{Requests: 1, Accepted: 1, Processed: 1, Bytes: limit},
		},
		"body over limit": {
			method: "POST", path: "/logs", body: overLimit, status: 413,
			stats: drain.Stats{Requests: 1, TooLarge: 1},
		},
		"chunked body at limit": {
			method: "POST", path: "/logs", body: atLimit, status: 204, mod: []func(*http.Request){chunked},
			stats: drain.Stats{Requests: 1, Accepted: 1, Processed: 1, Bytes: limit},
		},
		"chunked body over limit": {
			method: "POST", path: "/logs", body: overLimit + strings.Repeat("x", 5000), status: 413, mod: []func(*http.Request){chunked},
			stats: drain.Stats{Requests: 1, TooLarge: 1},
		},
		"body shorter than Content-Length": {
			method: "POST", path: "/logs", body: good, status: 400,
			mod:   []func(*http.Request){func(r *http.Request) { r.ContentLength = int64(len(good) + 10) }},
			stats: drain.Stats{Requests: 1, ReadErrors: 1},
		},
		"empty body": {
			method: "POST", path: "/logs", body: "", status: 204,
			stats: drain.Stats{Requests: 1, Accepted: 1, Processed: 1},
		},
		"GET /logs": {
			method: "GET", path: "/logs", status: 405, header: map[string]string{"Allow": "POST"},
		},
		"health": {
			method: "GET", path: "/health", status: 200, respBody: "ok\n",
		},
		"health HEAD": {
			method: "HEAD", path: "/health", status: 200,
		},
		"POST /health": {
			method: "POST", path: "/health", status: 405, header: map[string]string{"Allow": "GET, HEAD"},
		},
		"unknown path": {
			method: "POST", path: "/drain", body: good, status: 404,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h, _ := newHandler(t, inputtest.NewRecorder(), drain.Config{MaxBodyBytes: limit})
			r := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			r.SetBasicAuth(user, pass)
			for _, m := range tc.mod {
				m(r)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			resp := w.Result()
			if resp.StatusCode != tc.status {
				t.Errorf("status = %d, want %d (body %q)", resp.StatusCode, tc.status, w.Body.String())
			}
			for k, v := range tc.header {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if tc.respBody != "" && w.Body.String() != tc.respBody {
				t.Errorf("body = %q, want %q", w.Body.String(), tc.respBody)
			}
			if strings.Contains(w.Body.String(), pass) {
				t.Errorf("response body contains the password: %q", w.Body.String())
			}
			closeHandler(t, h)
			if got := h.Stats(); got != tc.stats {
				t.Errorf("stats:\n got %+v\nwant %+v", got, tc.stats)
			}
		})
	}
}

func TestDuplicateFrameID(t *testing.T) {
	rec := inputtest.NewRecorder()
	h, _ := newHandler(t, rec, drain.Config{})
	const id = "09C557EAFCFB6CF2740EE62F62971098"
	for i, want := range []int{204, 204, 204} {
		fid := id
		if i == 2 {
			fid = "19C557EAFCFB6CF2740EE62F62971098"
		}
		if resp := post(h, frame(msgA), fid); resp.StatusCode != want {
			t.Fatalf("POST %d: status %d, want %d", i, resp.StatusCode, want)
		}
	}
	// Without a Frame-Id nothing is de-duplicated.
	post(h, frame(msgB), "")
	post(h, frame(msgB), "")
	closeHandler(t, h)
	want := slices.Concat(wantA, wantA, wantB, wantB)
	slices.Sort(want)
	if got := rec.Sorted(); !slices.Equal(got, want) {
		t.Errorf("measurements:\n got %q\nwant %q", got, want)
	}
	if got := h.Stats(); got.Duplicates != 1 || got.Accepted != 4 {
		t.Errorf("stats = %+v, want 1 duplicate and 4 accepted", got)
	}
}

func TestDedupBounds(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	h, _ := newHandler(t, inputtest.NewRecorder(), drain.Config{DedupSize: 2, DedupAge: time.Minute, Now: clock})
	post(h, frame(msgA), "id1")
	post(h, frame(msgA), "id2")
	post(h, frame(msgA), "id3") // forgets id1
	post(h, frame(msgA), "id1") // accepted again
	advance(time.Minute)
	post(h, frame(msgA), "id3") // aged out: accepted again
	post(h, frame(msgA), "id3") // duplicate
	long := strings.Repeat("f", drain.MaxFrameIDBytes+1)
	post(h, frame(msgA), long)
	post(h, frame(msgA), long) // too long to remember: accepted
	closeHandler(t, h)
	got := h.Stats()
	if got.Accepted != 7 || got.Duplicates != 1 || got.DedupEvicted != 2 || got.LongFrameIDs != 2 {
		t.Errorf("stats = %+v, want 7 accepted, 1 duplicate, 2 evicted, 2 long ids", got)
	}
}

// TestQueueFull checks the 503 when the queue is full, and that the refused
// frame is accepted (not taken for a duplicate) when Logplex retries it.
func TestQueueFull(t *testing.T) {
	sink := newBlockingSink()
	h, _ := newHandler(t, sink, drain.Config{Workers: 1, QueueDepth: 1, RetryAfter: 3 * time.Second})
	if resp := post(h, frame(msgA), "id1"); resp.StatusCode != 204 {
		t.Fatalf("POST 1: %d", resp.StatusCode)
	}
	<-sink.entered // the worker holds body 1
	if resp := post(h, frame(msgA), "id2"); resp.StatusCode != 204 {
		t.Fatalf("POST 2: %d", resp.StatusCode)
	}
	resp := post(h, frame(msgB), "id3")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "3" {
		t.Fatalf("POST 3: status %d Retry-After %q, want 503 and 3", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if got := h.Stats(); got.QueueFull != 1 || got.Queued != 1 || got.Accepted != 2 {
		t.Errorf("stats = %+v", got)
	}
	close(sink.release)
	waitFor(t, func() bool { return h.Stats().Processed == 2 })
	if resp := post(h, frame(msgB), "id3"); resp.StatusCode != 204 {
		t.Fatalf("retry of POST 3: %d, want 204", resp.StatusCode)
	}
	closeHandler(t, h)
	want := slices.Concat(wantA, wantA, wantB)
	slices.Sort(want)
	if got := sink.rec.Sorted(); !slices.Equal(got, want) {
		t.Errorf("measurements:\n got %q\nwant %q", got, want)
	}
	if got := h.Stats(); got.Duplicates != 0 || got.Accepted != 3 {
		t.Errorf("stats = %+v", got)
	}
}

func TestQueueBytesBound(t *testing.T) {
	body := frame(msgA)
	sink := newBlockingSink()
	h, _ := newHandler(t, sink, drain.Config{Workers: 1, MaxBodyBytes: len(body), MaxQueueBytes: 2*len(body) + len(body)/2})
	for i, want := range []int{204, 204, 503} {
		if resp := post(h, body, ""); resp.StatusCode != want {
			t.Fatalf("POST %d: %d, want %d", i, resp.StatusCode, want)
		}
		if i == 0 {
			<-sink.entered
		}
	}
	if got := h.Stats(); got.QueuedBytes != int64(2*len(body)) || got.QueueFull != 1 {
		t.Errorf("stats = %+v", got)
	}
	close(sink.release)
	closeHandler(t, h)
	if got := h.Stats(); got.QueuedBytes != 0 || got.Processed != 2 {
		t.Errorf("stats after close = %+v", got)
	}
}

// TestCloseDrains checks that Close parses every accepted body before it
// returns, and refuses new ones with 503.
func TestCloseDrains(t *testing.T) {
	sink := newBlockingSink()
	h, _ := newHandler(t, sink, drain.Config{Workers: 1})
	for i := range 3 {
		if resp := post(h, frame(msgA), strconv.Itoa(i)); resp.StatusCode != 204 {
			t.Fatalf("POST %d: %d", i, resp.StatusCode)
		}
	}
	<-sink.entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err := h.Close(ctx)
	cancel()
	// Two queued and the one being parsed (issue 13: the queue alone said
	// "0 bodies still queued" when the workers held them all).
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "3 accepted bodies not yet parsed") || h.Stats().Pending != 3 {
		t.Errorf("Close with a blocked sink = %v (Pending %d), want 3 accepted bodies not yet parsed and DeadlineExceeded", err, h.Stats().Pending)
	}
	resp := post(h, frame(msgB), "late")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("POST after Close: %d Retry-After %q, want 503 and 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", drain.HealthPath, nil))
	if w.Code != 503 {
		t.Errorf("health after Close = %d, want 503", w.Code)
	}
	close(sink.release)
	closeHandler(t, h)
	if got := sink.rec.Len(); got != 6 {
		t.Errorf("got %d measurements, want 6", got)
	}
	if got := h.Stats(); got.Closing != 1 || got.Processed != 3 {
		t.Errorf("stats = %+v", got)
	}
}

func TestMsgCountDiffers(t *testing.T) {
	h, _ := newHandler(t, inputtest.NewRecorder(), drain.Config{})
	count := func(n string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Logplex-Msg-Count", n) }
	}
	post(h, frame(msgA)+frame(msgB), "", count("2"))
	post(h, frame(msgA)+frame(msgB), "", count("5"))
	post(h, frame(msgA)+frame(msgB), "", count("x"))
	closeHandler(t, h)
	if got := h.Stats().CountDiffers; got != 1 {
		t.Errorf("CountDiffers = %d, want 1", got)
	}
}

func TestNew(t *testing.T) {
	p, err := input.NewProcessor(inputtest.NewRecorder(), input.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]drain.Config{
		"no credentials": {},
		"no password":    {User: user},
		"no user":        {Password: pass},
	} {
		if _, err := drain.New(p, cfg); !errors.Is(err, drain.ErrNoCredentials) {
			t.Errorf("%s: err = %v, want ErrNoCredentials", name, err)
		}
	}
	for name, cfg := range map[string]drain.Config{
		"negative body":            {User: user, Password: pass, MaxBodyBytes: -1},
		"queue bytes below body":   {User: user, Password: pass, MaxBodyBytes: 2 << 20, MaxQueueBytes: 1 << 20},
		"negative retry-after":     {User: user, Password: pass, RetryAfter: -time.Second},
		"negative workers":         {User: user, Password: pass, Workers: -1},
		"negative dedup age":       {User: user, Password: pass, DedupAge: -time.Second},
		"negative queue depth":     {User: user, Password: pass, QueueDepth: -1},
		"negative max queue bytes": {User: user, Password: pass, MaxQueueBytes: -1},
	} {
		if _, err := drain.New(p, cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := drain.New(nil, drain.Config{User: user, Password: pass}); err == nil {
		t.Error("nil Processor accepted")
	}
}

func TestInsecureNoAuth(t *testing.T) {
	var logs bytes.Buffer
	rec := inputtest.NewRecorder()
	h, _ := newHandler(t, rec, drain.Config{InsecureNoAuth: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "InsecureNoAuth") {
		t.Errorf("no warning logged: %q", logs.String())
	}
	resp := post(h, frame(msgA), "", func(r *http.Request) { r.Header.Del("Authorization") })
	if resp.StatusCode != 204 {
		t.Errorf("status = %d, want 204", resp.StatusCode)
	}
	closeHandler(t, h)
	if rec.Len() != 2 {
		t.Errorf("got %d measurements, want 2", rec.Len())
	}
}

// TestServer runs the handler behind a real HTTP server on 127.0.0.1 with a
// connection bound below the number of clients, as the worker does. Clients
// retry failed POSTs with the same Frame-Id, as Logplex does.
func TestServer(t *testing.T) {
	rec := inputtest.NewRecorder()
	h, _ := newHandler(t, rec, drain.Config{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := drain.NewServer("", h, 2)
	go srv.Serve(l)
	url := "http://" + user + ":" + pass + "@" + l.Addr().String() + drain.LogsPath
	var wg sync.WaitGroup
	var ok, retries atomic.Int64
	client := &http.Client{Timeout: 10 * time.Second}
	for c := range 4 {
		wg.Go(func() {
			for i := range 10 {
				for attempt := 0; ; attempt++ {
					req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(frame(msgA)+frame(msgB)))
					req.Header.Set("Content-Type", "application/logplex-1")
					req.Header.Set("Logplex-Frame-Id", strconv.Itoa(c*100+i))
					resp, err := client.Do(req)
					if err != nil {
						if attempt == 10 {
							t.Error(err)
							return
						}
						retries.Add(1)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 204 {
						ok.Add(1)
					}
					break
				}
			}
		})
	}
	wg.Wait()
	// net/http's Shutdown counts a connection that never sent a request (a
	// client's spare dial) as busy for its first 5 s: wait longer than that.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	closeHandler(t, h)
	if ok.Load() != 40 || rec.Len() != 40*3 {
		t.Errorf("%d POSTs accepted, %d measurements; want 40 and 120", ok.Load(), rec.Len())
	}
	waitFor(t, func() bool { return srv.Stats().Active == 0 })
	st := srv.Stats()
	if st.Accepted < 4 || st.Saturated == 0 {
		t.Errorf("server stats = %+v, want at least 4 connections accepted and the bound hit", st)
	}
	t.Logf("server stats %+v, handler stats %+v, client retries %d", st, h.Stats(), retries.Load())
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSharedSeen: a body whose Frame-Id another worker took (SharedSeen says
// so) is dropped by the consumer and counted; the local window is asked
// first, so a retry to this worker never reaches SharedSeen.
// TestSharedSeenOffTheParsers is issue 18's first item: the shared
// Frame-Id check (a Redis round trip) starts when a body is queued, so that
// the checks of every queued body are in flight at once while a single
// parser works; before, the parser asked for each body in turn and the
// queue waited behind each round trip (half the drain's throughput with
// Redis, measured black-box by internal/tools/drainbench). A body answered
// 503 is never checked, so Logplex's retry of it is not a "duplicate".
func TestSharedSeenOffTheParsers(t *testing.T) {
	const n = 20
	rec := inputtest.NewRecorder()
	release := make(chan struct{})
	var inFlight, most atomic.Int32
	var mu sync.Mutex
	var asked []string
	h, _ := newHandler(t, rec, drain.Config{Workers: 1, QueueDepth: n, SharedSeen: func(app, id string) bool {
		now := inFlight.Add(1)
		for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
		}
		mu.Lock()
		asked = append(asked, id)
		mu.Unlock()
		<-release
		inFlight.Add(-1)
		return id == "frame-3"
	}})
	// One parser and a queue of n: n+2 bodies cannot all be taken, whether
	// or not the parser has picked up the first yet.
	var accepted int32
	var refused []string
	for i := range n + 2 {
		id := fmt.Sprintf("frame-%d", i)
		switch resp := post(h, frame(msgA), id); resp.StatusCode {
		case http.StatusNoContent:
			accepted++
		case http.StatusServiceUnavailable:
			refused = append(refused, id)
		default:
			t.Fatalf("POST %s: %s", id, resp.Status)
		}
	}
	if len(refused) == 0 || accepted < n {
		t.Fatalf("%d accepted, refused %q: want at least %d accepted and one refused", accepted, refused, n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for most.Load() < accepted && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := most.Load(); got != accepted {
		t.Errorf("%d Frame-Id checks in flight at most while the parser waited; want every queued body's (%d)", got, accepted)
	}
	close(release)
	closeHandler(t, h)
	if st := h.Stats(); st.Processed != uint64(accepted) || st.SharedDups != 1 {
		t.Errorf("processed %d, shared duplicates %d; want %d and 1", st.Processed, st.SharedDups, accepted)
	}
	if got, want := len(rec.Sorted()), int(accepted-1)*len(wantA); got != want {
		t.Errorf("%d measurements, want %d (every queued body but the duplicate)", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range refused {
		if slices.Contains(asked, id) {
			t.Errorf("SharedSeen asked for %s, answered 503: Logplex's retry of it would be a duplicate", id)
		}
	}
	if len(asked) != int(accepted) {
		t.Errorf("SharedSeen asked %d times, want once per queued body (%d)", len(asked), accepted)
	}
}

func TestSharedSeen(t *testing.T) {
	rec := inputtest.NewRecorder()
	var mu sync.Mutex
	var asked []string
	taken := map[string]bool{"other-worker-took-this": true}
	h, _ := newHandler(t, rec, drain.Config{SharedSeen: func(app, id string) bool {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, id)
		return taken[id]
	}})
	post(h, frame(msgA), "fresh")
	post(h, frame(msgA), "fresh") // local duplicate
	post(h, frame(msgB), "other-worker-took-this")
	post(h, frame(msgB), "") // no Frame-Id: not asked
	closeHandler(t, h)
	if got, want := rec.Sorted(), slices.Concat(wantA, wantB); !slices.Equal(got, want) {
		t.Errorf("measurements:\n got %q\nwant %q", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(asked)
	if !slices.Equal(asked, []string{"fresh", "other-worker-took-this"}) {
		t.Errorf("SharedSeen asked for %q", asked)
	}
	if st := h.Stats(); st.Duplicates != 1 || st.SharedDups != 1 || st.Processed != 3 {
		t.Errorf("stats = %+v", st)
	}
}
