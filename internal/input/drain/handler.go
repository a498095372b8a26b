package drain

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynometrics/dynometrics/internal/appauth"
	"github.com/dynometrics/dynometrics/internal/appstats"
	"github.com/dynometrics/dynometrics/internal/httpauth"
	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/budget"
	"github.com/dynometrics/dynometrics/internal/redact"
	"github.com/dynometrics/dynometrics/internal/throttle"
)

// Paths the Handler serves.
const (
	LogsPath   = "/logs"   // POST: a Logplex drain body
	HealthPath = "/health" // GET or HEAD: 200 "ok", 503 once closing
)

// Defaults for the zero fields of Config.
const (
	// DefaultMaxBodyBytes bounds one POST body; larger ones get 413. Logplex
	// targets bodies of at most 100 KiB.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultQueueDepth bounds the bodies waiting to be parsed; when full, POSTs
	// get 503 and Logplex retries them.
	DefaultQueueDepth = 1024
	// DefaultMaxQueueBytes bounds the bytes of the bodies waiting to be parsed
	// (the queue's memory); when reached, POSTs get 503.
	DefaultMaxQueueBytes = 32 << 20
	// DefaultDedupSize is how many Logplex-Frame-Ids of accepted bodies are
	// remembered to recognise retried POSTs.
	DefaultDedupSize = 10000
	// DefaultDedupAge is how long a Logplex-Frame-Id is remembered. Logplex
	// retries within seconds (3 attempts, 5 s timeout each).
	DefaultDedupAge = 5 * time.Minute
	// DefaultRetryAfter is the Retry-After of a 503.
	DefaultRetryAfter = time.Second
	// MaxFrameIDBytes bounds a Logplex-Frame-Id worth remembering (Logplex sends
	// 32 hex digits); longer ids are not de-duplicated and are counted in
	// Stats.LongFrameIDs.
	MaxFrameIDBytes = 128
	// readErrorLogEvery: body read errors are logged at most this often.
	readErrorLogEvery = time.Minute
)

// ErrNoCredentials is returned by New when User or Password is empty and
// Config.InsecureNoAuth is not set.
var ErrNoCredentials = errors.New("drain: User and Password are required (set InsecureNoAuth to run an open drain)")

// Config configures a Handler. The zero value of every numeric field means its
// documented default.
type Config struct {
	// User and Password are the Basic auth credentials the drain URL carries
	// (https://user:password@host/logs). Both are required unless
	// InsecureNoAuth is set.
	User, Password string
	// InsecureNoAuth accepts POSTs without credentials. New logs a warning.
	InsecureNoAuth bool
	// Apps, when set, turns on multi-app mode: User and Password are then
	// unused and must be empty, and every POST must carry an app's name and
	// its token (internal/appauth); the app travels with the body's
	// measurements (metric.Measurement.App). Each app then has a share of
	// the queue (see Stats.AppShare).
	Apps *appauth.Keyring
	// AppStats, when set with Apps, counts per app the POSTs answered 503
	// for the queue (appstats.Counters.Refused).
	AppStats *appstats.Table

	MaxBodyBytes  int // bound on one body; 0 means DefaultMaxBodyBytes
	QueueDepth    int // bodies waiting to be parsed; 0 means DefaultQueueDepth
	MaxQueueBytes int // bytes waiting to be parsed; 0 means DefaultMaxQueueBytes
	// Budget bounds the bytes of bodies being read at once, shared with the
	// worker's other HTTP servers; bytes are taken as they arrive, whatever
	// the Content-Length, and beyond it POSTs get 503 and Logplex retries
	// them (Stats.Busy). nil means a Budget of budget.Default for this
	// Handler alone.
	Budget     *budget.Budget
	Workers    int           // parsing goroutines; 0 means runtime.GOMAXPROCS(0)
	DedupSize  int           // Frame-Ids remembered; 0 means DefaultDedupSize, <0 disables de-duplication
	DedupAge   time.Duration // how long a Frame-Id is remembered; 0 means DefaultDedupAge
	RetryAfter time.Duration // Retry-After of a 503 (whole seconds, at least 1); 0 means DefaultRetryAfter

	// Logger receives the warning about InsecureNoAuth and errors; nil means
	// slog.Default(). Credentials and body contents are never logged.
	Logger *slog.Logger
	// Now is the clock for arrival times and the de-duplication window; nil
	// means the Processor's clock.
	Now func() time.Time

	// SharedSeen, when set, extends de-duplication to every worker of the
	// app (shared state on Redis): it is asked once per queued body with a
	// Frame-Id, after the local window, and the body is dropped when it
	// returns true (another worker, or this one, already took that
	// Frame-Id). It is asked from a goroutine of its own as soon as the body
	// is queued, never from a parsing goroutine, so that the parsers never
	// wait for its round trip while other bodies are queued; a parser waits
	// only for the verdict of the body it is about to parse. It must be safe
	// for concurrent use and return promptly; when it cannot tell, it
	// returns false and the body is kept. app is the body's app (multi-app
	// mode, Apps), else "": each app's Frame-Ids are its own.
	SharedSeen func(app, frameID string) bool
}

// Stats are the cumulative counters of a Handler (Queued and QueuedBytes are
// current values).
type Stats struct {
	Requests     uint64 `metric:"requests"`               // POSTs to LogsPath
	Accepted     uint64 `metric:"accepted"`               // bodies queued (answered 204)
	Bytes        uint64 `metric:"-"`                      // bytes of the accepted bodies
	Processed    uint64 `metric:"-"`                      // bodies parsed
	Duplicates   uint64 `metric:"duplicates,drop"`        // POSTs whose Frame-Id was already accepted (answered 204, dropped)
	SharedDups   uint64 `metric:"shared_duplicates,drop"` // bodies dropped because another worker had taken their Frame-Id (Config.SharedSeen)
	Unauthorized uint64 `metric:"unauthorized,drop"`      // POSTs with missing or wrong credentials (401)
	TooLarge     uint64 `metric:"too_large,drop"`         // bodies over MaxBodyBytes (413)
	QueueFull    uint64 `metric:"queue_full,drop"`        // POSTs refused because the queue was full (503)
	AppShare     uint64 `metric:"app_share,drop"`         // POSTs refused because their app held its share of a queue at least half full (503; multi-app mode)
	Busy         uint64 `metric:"busy,drop"`              // POSTs refused because the budget of bytes being read was exhausted (503)
	Closing      uint64 `metric:"closing,drop"`           // POSTs refused because the Handler was closing (503)
	ReadErrors   uint64 `metric:"read_errors,drop"`       // bodies that could not be read completely (400; logged at most once a minute)
	LongFrameIDs uint64 `metric:"long_frame_ids,drop"`    // Frame-Ids over MaxFrameIDBytes, not de-duplicated
	DedupEvicted uint64 `metric:"dedup_evicted,drop"`     // Frame-Ids forgotten by DedupSize before DedupAge
	CountDiffers uint64 `metric:"count_differs,drop"`     // bodies whose frame count differed from Logplex-Msg-Count
	Pending      int    `metric:"pending,gauge"`          // bodies accepted and not parsed yet (queued or being parsed) now
	Queued       int    `metric:"queued,gauge"`           // bodies waiting to be parsed now
	QueuedBytes  int64  `metric:"-"`                      // bytes waiting to be parsed now
}

// Handler is the drain's http.Handler. Serve it through a Server (or
// CutBodies), which ends the read of a body it answers without reading
// (401, 413, 503). Safe for concurrent use.
type Handler struct {
	p          *input.Processor
	cfg        Config
	auth       *httpauth.Basic // nil with InsecureNoAuth
	retryAfter string
	redact     *redact.Redactor

	mu     sync.Mutex // guards closed, seen and sends on queue
	closed bool
	seen   *dedup
	queue  chan job
	appQ   map[string]*appQueue // per app's part of the queue (multi-app mode)
	wg     sync.WaitGroup
	free   chan *[]byte // recycled body buffers

	queuedBytes atomic.Int64
	freeBytes   atomic.Int64     // capacity of the buffers on the free list
	budget      *budget.Budget   // bytes of bodies being read (Config.Budget)
	pending     atomic.Int64     // bodies accepted and not yet parsed
	activeApps  atomic.Int64     // apps with bodies in the queue (multi-app mode)
	readErrLog  *throttle.Logger // read errors and 503s for the budget, each at most once per readErrorLogEvery

	requests, accepted, bytes, processed, duplicates, unauthorized        atomic.Uint64
	tooLarge, queueFull, busy, closing, readErrors, longIDs, countDiffers atomic.Uint64
	sharedDups, appShare                                                  atomic.Uint64
}

// appQueue is one app's part of the queue: the bodies and bytes of it
// queued and not parsed yet. The parsers decrement it without the Handler's
// lock; enqueue increments it under the lock.
type appQueue struct {
	bodies, bytes atomic.Int64
}

// add adds a body (bodies 1) or takes one off (-1), keeping
// h.activeApps the number of apps with bodies queued. A nil q (no app)
// counts nothing.
func (q *appQueue) add(h *Handler, bytes, bodies int64) {
	if q == nil {
		return
	}
	q.bytes.Add(bytes)
	switch q.bodies.Add(bodies) {
	case 1:
		if bodies > 0 {
			h.activeApps.Add(1)
		}
	case 0:
		h.activeApps.Add(-1)
	}
}

type job struct {
	buf      *[]byte
	arrival  time.Time
	msgCount int       // Logplex-Msg-Count, or -1
	frameID  string    // Logplex-Frame-Id when de-duplicated by it, else ""
	app      string    // the authenticated app (Config.Apps), else ""
	appQ     *appQueue // app's part of the queue, nil without an app
	// shared receives SharedSeen's verdict on frameID (buffered); nil
	// without SharedSeen or a Frame-Id.
	shared chan bool
}

// New returns a Handler that parses drain bodies with p and starts its
// parsing goroutines. Call Close to stop them.
func New(p *input.Processor, cfg Config) (*Handler, error) {
	if p == nil {
		return nil, errors.New("drain: nil Processor")
	}
	if cfg.Apps != nil && (cfg.User != "" || cfg.Password != "" || cfg.InsecureNoAuth) {
		return nil, errors.New("drain: Apps excludes User, Password and InsecureNoAuth")
	}
	if cfg.Apps == nil && !cfg.InsecureNoAuth && (cfg.User == "" || cfg.Password == "") {
		return nil, ErrNoCredentials
	}
	if cfg.MaxBodyBytes < 0 || cfg.QueueDepth < 0 || cfg.MaxQueueBytes < 0 || cfg.Workers < 0 || cfg.DedupAge < 0 || cfg.RetryAfter < 0 {
		return nil, errors.New("drain: negative bound in Config")
	}
	cfg.MaxBodyBytes = cmp.Or(cfg.MaxBodyBytes, DefaultMaxBodyBytes)
	cfg.QueueDepth = cmp.Or(cfg.QueueDepth, DefaultQueueDepth)
	cfg.MaxQueueBytes = cmp.Or(cfg.MaxQueueBytes, DefaultMaxQueueBytes)
	cfg.Workers = cmp.Or(cfg.Workers, runtime.GOMAXPROCS(0))
	cfg.DedupSize = cmp.Or(cfg.DedupSize, DefaultDedupSize)
	cfg.DedupAge = cmp.Or(cfg.DedupAge, DefaultDedupAge)
	cfg.RetryAfter = cmp.Or(cfg.RetryAfter, DefaultRetryAfter)
	if cfg.MaxQueueBytes < cfg.MaxBodyBytes {
		return nil, fmt.Errorf("drain: MaxQueueBytes %d must be at least MaxBodyBytes %d", cfg.MaxQueueBytes, cfg.MaxBodyBytes)
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.Now == nil {
		cfg.Now = p.Now
	}
	h := &Handler{
		p:          p,
		cfg:        cfg,
		readErrLog: throttle.New(cfg.Logger, readErrorLogEvery, nil),
		auth:       httpauth.NewBasic(cfg.User, cfg.Password),
		free:       make(chan *[]byte, cfg.QueueDepth+cfg.Workers),
		retryAfter: strconv.Itoa(max(1, int(cfg.RetryAfter/time.Second))),
		queue:      make(chan job, cfg.QueueDepth),
		redact:     redact.New(cfg.Password).Basic(cfg.User, cfg.Password),
		budget:     cfg.Budget,
	}
	if h.budget == nil {
		h.budget = budget.New(budget.Default)
	}
	if cfg.DedupSize > 0 {
		h.seen = newDedup(cfg.DedupSize, cfg.DedupAge)
	}
	if cfg.Apps != nil {
		h.appQ = make(map[string]*appQueue)
	}
	if cfg.InsecureNoAuth {
		cfg.Logger.Warn("drain: InsecureNoAuth is set: POST /logs accepts log bodies from anyone")
	}
	h.wg.Add(cfg.Workers)
	for range cfg.Workers {
		go h.work()
	}
	return h, nil
}

// ServeHTTP serves LogsPath and HealthPath.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case LogsPath:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "drain: "+LogsPath+" accepts POST only", http.StatusMethodNotAllowed)
			return
		}
		h.serveLogs(w, r)
	case HealthPath:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "drain: "+HealthPath+" accepts GET only", http.StatusMethodNotAllowed)
			return
		}
		h.mu.Lock()
		closed := h.closed
		h.mu.Unlock()
		if closed {
			http.Error(w, "closing", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) serveLogs(w http.ResponseWriter, r *http.Request) {
	h.requests.Add(1)
	app, ok := h.authorized(r)
	if !ok {
		h.unauthorized.Add(1)
		w.Header().Set("WWW-Authenticate", `Basic realm="dynometrics drain", charset="UTF-8"`)
		http.Error(w, "drain: missing or wrong credentials", http.StatusUnauthorized)
		return
	}
	// The body's bytes are taken from the budget as they arrive: a client
	// that declares 1 MiB and sends 10 bytes holds 10 bytes.
	body := h.budget.Reader(r.Body)
	defer body.Release() // once queued, the bytes count in MaxQueueBytes
	buf := h.getBuf()
	err := input.ErrTooLarge // a declared length over the bound: refused unread
	if r.ContentLength <= int64(h.cfg.MaxBodyBytes) {
		// The buffer grows as bytes arrive, never to more than the
		// declared length + 1 (rounded up to bufferQuantum) ahead of them.
		*buf, err = input.ReadBody((*buf)[:0], body, h.cfg.MaxBodyBytes, r.ContentLength, bufferQuantum)
	}
	if err != nil {
		h.putBuf(buf)
		switch {
		case errors.Is(err, input.ErrTooLarge):
			h.tooLarge.Add(1)
			http.Error(w, "drain: body exceeds "+strconv.Itoa(h.cfg.MaxBodyBytes)+" bytes", http.StatusRequestEntityTooLarge)
		case errors.Is(err, budget.ErrExhausted):
			h.busy.Add(1)
			h.readErrLog.Warn("drain: request bytes in flight at their bound: answering 503 (logged at most once a minute; all counted)",
				"remote", r.RemoteAddr, "busy", h.busy.Load(), "in_flight", h.budget.Stats().Used)
			w.Header().Set("Retry-After", h.retryAfter)
			http.Error(w, "drain: busy, retry", http.StatusServiceUnavailable)
		default:
			h.readErrors.Add(1) // logged at most once a minute: a flood of broken connections must not flood the log
			h.readErrLog.Warn("drain: reading a POST body failed (logged at most once a minute; all counted)",
				"remote", r.RemoteAddr, "err", h.redact.Error(err), "read_errors", h.readErrors.Load())
			http.Error(w, "drain: reading body: "+err.Error(), http.StatusBadRequest)
		}
		return
	}
	j := job{buf: buf, arrival: h.cfg.Now(), msgCount: -1, app: app}
	if n, err := strconv.Atoi(r.Header.Get("Logplex-Msg-Count")); err == nil {
		j.msgCount = n
	}
	switch res := h.enqueue(j, r.Header.Get("Logplex-Frame-Id")); res {
	case queued:
		w.WriteHeader(http.StatusNoContent)
	case duplicate:
		h.putBuf(buf)
		w.WriteHeader(http.StatusNoContent)
	case full, overShare:
		h.putBuf(buf)
		if app != "" && h.cfg.AppStats != nil {
			h.cfg.AppStats.For(app).Refused.Add(1)
		}
		w.Header().Set("Retry-After", h.retryAfter)
		msg := "drain: queue full, retry"
		if res == overShare {
			msg = "drain: this app's share of the queue is full, retry"
			h.readErrLog.Warn("drain: an app holds its share of a queue at least half full: answering it 503 (logged at most once a minute; all counted)",
				"app", app, "app_share", h.appShare.Load(), "queued", len(h.queue))
		}
		http.Error(w, msg, http.StatusServiceUnavailable)
	case closing:
		h.putBuf(buf)
		w.Header().Set("Retry-After", h.retryAfter)
		http.Error(w, "drain: shutting down, retry", http.StatusServiceUnavailable)
	}
}

// authorized checks the Basic auth credentials (internal/httpauth: constant
// time, allocation-free for the canonical header Logplex sends), or in
// multi-app mode an app's name and token (internal/appauth), and returns the
// app.
func (h *Handler) authorized(r *http.Request) (app string, ok bool) {
	if h.cfg.Apps != nil {
		return h.cfg.Apps.Check(r)
	}
	return "", h.cfg.InsecureNoAuth || h.auth.Check(r)
}

// Body buffers are recycled through a free list rather than a sync.Pool: the
// pool is emptied at every GC, and with 100 KiB bodies GCs are frequent, so
// most Gets allocated (BenchmarkServeHTTP: 6.8 KB/op with sync.Pool). The
// free list holds at most QueueDepth+Workers buffers of at most maxFreeBuffer
// bytes each, and at most MaxQueueBytes bytes in all: the memory a full queue
// uses anyway, so resident memory stays flat under load.
const (
	maxFreeBuffer = 256 << 10
	bufferQuantum = 32 << 10 // buffer sizes are multiples of this, so they fit the next body
)

func (h *Handler) getBuf() *[]byte {
	select {
	case b := <-h.free:
		h.freeBytes.Add(-int64(cap(*b)))
		return b
	default:
		b := make([]byte, 0, bufferQuantum)
		return &b
	}
}

func (h *Handler) putBuf(buf *[]byte) {
	c := int64(cap(*buf))
	if c > maxFreeBuffer || h.freeBytes.Add(c) > int64(h.cfg.MaxQueueBytes) {
		h.freeBytes.Add(-c)
		return
	}
	*buf = (*buf)[:0]
	select {
	case h.free <- buf:
	default:
		h.freeBytes.Add(-c)
	}
}

type enqueueResult uint8

const (
	queued enqueueResult = iota
	duplicate
	full
	overShare // the app's share of the queue (multi-app mode)
	closing
)

// maxAppQueues bounds the per-app queue entries kept: beyond it the entries
// of apps with nothing queued are dropped (apps are authenticated, so this
// is a bound on memory, not a limit anyone reaches by guessing names).
const maxAppQueues = 4096

// appQueueFor returns app's part of the queue. Called with h.mu held.
func (h *Handler) appQueueFor(app string) *appQueue {
	q := h.appQ[app]
	if q != nil {
		return q
	}
	if len(h.appQ) >= maxAppQueues {
		for a, q := range h.appQ {
			if q.bodies.Load() == 0 { // no queued job refers to it
				delete(h.appQ, a)
			}
		}
	}
	q = new(appQueue)
	h.appQ[app] = q
	return q
}

// overShare reports whether a body of n bytes of the app whose part of the
// queue is q must wait (503): once the queue holds at least half its bodies
// or bytes, each of the k apps with bodies queued (this one included) may
// hold 1/(k+1) of the queue (at least one body), so a flooding app keeps
// the rest for the others and for an app that has none queued yet. Called
// with h.mu held.
func (h *Handler) overShare(q *appQueue, n int64) bool {
	depth, maxBytes := h.cfg.QueueDepth, int64(h.cfg.MaxQueueBytes)
	if len(h.queue) < depth/2 && h.queuedBytes.Load() < maxBytes/2 {
		return false
	}
	held := q.bodies.Load()
	k := h.activeApps.Load()
	if held == 0 {
		k++
	}
	return held >= max(int64(depth)/(k+1), 1) ||
		held > 0 && q.bytes.Load()+n > max(maxBytes/(k+1), int64(h.cfg.MaxBodyBytes))
}

// enqueue queues j unless its frame id was accepted before, the queue is full,
// or the Handler is closing. The frame id is remembered only once queued, so
// that a retry of a 503'd POST is accepted.
func (h *Handler) enqueue(j job, id string) enqueueResult {
	n := int64(len(*j.buf))
	useID := id != "" && h.seen != nil
	if len(id) > MaxFrameIDBytes {
		h.longIDs.Add(1)
		useID = false
	}
	local := id // the local window's key: each app's Frame-Ids are its own
	if useID && j.app != "" {
		local = j.app + "\x00" + id
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		h.closing.Add(1)
		return closing
	}
	if useID && h.seen.seen(local, j.arrival) {
		h.duplicates.Add(1)
		return duplicate
	}
	if h.appQ != nil {
		j.appQ = h.appQueueFor(j.app)
		if h.overShare(j.appQ, n) {
			h.appShare.Add(1)
			return overShare
		}
	}
	if h.queuedBytes.Add(n) > int64(h.cfg.MaxQueueBytes) {
		h.queuedBytes.Add(-n)
		h.queueFull.Add(1)
		return full
	}
	if useID {
		j.frameID = id
		if h.cfg.SharedSeen != nil {
			j.shared = make(chan bool, 1)
		}
	}
	j.appQ.add(h, n, 1) // before the parsers can take it off
	select {
	case h.queue <- j:
	default:
		h.queuedBytes.Add(-n)
		j.appQ.add(h, -n, -1)
		h.queueFull.Add(1)
		return full
	}
	if j.shared != nil {
		// Only once queued: a Frame-Id taken for a body answered 503 would
		// make Logplex's retry of it a "duplicate". At most one check per
		// queued body is in flight, so these goroutines are bounded by
		// QueueDepth.
		go func(app, id string, verdict chan<- bool) { verdict <- h.cfg.SharedSeen(app, id) }(j.app, id, j.shared)
	}
	if useID {
		// id is the header value net/http allocated for this request alone:
		// keeping it keeps no more than its bytes (and the app's name).
		h.seen.add(local, j.arrival)
	}
	h.pending.Add(1)
	h.accepted.Add(1)
	h.bytes.Add(uint64(n))
	return queued
}

// work parses queued bodies until the queue is closed and empty.
func (h *Handler) work() {
	defer h.wg.Done()
	s := h.p.Session()
	defer s.Release()
	for j := range h.queue {
		if j.shared != nil && <-j.shared {
			h.sharedDups.Add(1)
		} else {
			s.SetArrival(j.arrival)
			s.SetApp(j.app)
			frames := s.Frames(*j.buf)
			s.Flush()
			if j.msgCount >= 0 && frames != j.msgCount {
				h.countDiffers.Add(1)
			}
		}
		h.queuedBytes.Add(-int64(len(*j.buf)))
		j.appQ.add(h, -int64(len(*j.buf)), -1)
		h.putBuf(j.buf)
		h.processed.Add(1)
		h.pending.Add(-1)
	}
}

// Close refuses further POSTs (503, so Logplex retries them elsewhere or
// later), then waits until every queued body has reached the Sink or ctx ends.
// Call it after the HTTP server stopped accepting requests. It returns an
// error naming how many accepted bodies were not parsed yet when ctx ended
// (Stats.Pending).
func (h *Handler) Close(ctx context.Context) error {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.queue)
	}
	h.mu.Unlock()
	if err := input.Wait(ctx, &h.wg); err != nil {
		// Queued or being parsed: the queue alone misses the bodies the
		// workers hold.
		return fmt.Errorf("drain: close: %d accepted bodies not yet parsed: %w", h.pending.Load(), err)
	}
	return nil
}

// Stats returns the cumulative counters. Safe for concurrent use.
func (h *Handler) Stats() Stats {
	st := Stats{
		Requests:     h.requests.Load(),
		Accepted:     h.accepted.Load(),
		Bytes:        h.bytes.Load(),
		Processed:    h.processed.Load(),
		Duplicates:   h.duplicates.Load(),
		SharedDups:   h.sharedDups.Load(),
		Unauthorized: h.unauthorized.Load(),
		TooLarge:     h.tooLarge.Load(),
		QueueFull:    h.queueFull.Load(),
		AppShare:     h.appShare.Load(),
		Busy:         h.busy.Load(),
		Closing:      h.closing.Load(),
		ReadErrors:   h.readErrors.Load(),
		LongFrameIDs: h.longIDs.Load(),
		CountDiffers: h.countDiffers.Load(),
		Pending:      int(h.pending.Load()),
		Queued:       len(h.queue),
		QueuedBytes:  h.queuedBytes.Load(),
	}
	h.mu.Lock()
	if h.seen != nil {
		st.DedupEvicted = h.seen.evicted
	}
	h.mu.Unlock()
	return st
}
