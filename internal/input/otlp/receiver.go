package otlp

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynometrics/dynometrics/internal/appauth"
	"github.com/dynometrics/dynometrics/internal/appstats"
	"github.com/dynometrics/dynometrics/internal/httpauth"
	"github.com/dynometrics/dynometrics/internal/input"
	"github.com/dynometrics/dynometrics/internal/input/budget"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/dynometrics/dynometrics/internal/throttle"
	"github.com/klauspost/compress/gzip"
	logspb "go.opentelemetry.io/proto/slim/otlp/logs/v1"
	metricspb "go.opentelemetry.io/proto/slim/otlp/metrics/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Paths the Receiver serves (OTLP/HTTP's defaults).
const (
	LogsPath    = "/v1/logs"    // POST: ExportLogsServiceRequest
	MetricsPath = "/v1/metrics" // POST: ExportMetricsServiceRequest
)

// Bounds of the Receiver. Each one that is hit is counted in Stats.
const (
	// MaxBodyBytes bounds a request body as it arrives (compressed or not);
	// a larger one gets 413. The OpenTelemetry exporters send batches of at
	// most a few hundred kilobytes.
	MaxBodyBytes = 4 << 20
	// MaxDecodedBytes bounds a body after gzip decompression, so that a gzip
	// bomb (a few kilobytes that inflate to gigabytes) stops here with 413.
	// A Collector batch of 8,192 log records of 500 bytes is about 5 MiB.
	MaxDecodedBytes = 16 << 20
	// MaxConcurrentDecodes bounds the requests being inflated and decoded at
	// once (each may hold MaxDecodedBytes and MaxMessages decoded messages,
	// some 60 MB); others wait for a slot while their client waits.
	MaxConcurrentDecodes = 4
	// MaxNesting bounds how deeply messages nest in a body (AnyValue lists
	// and maps in attributes and bodies nest without limit in the schema); a
	// deeper body is malformed (400). A log record with a map body nested
	// three levels deep uses about 12.
	MaxNesting = 64
	// MaxRecords bounds the log records or metric data points of one
	// request; those past it are rejected (partial_success).
	MaxRecords = 20000
	// MaxAttributes bounds the attributes of one log record, data point or
	// resource; a record or point with more (or under a resource with more)
	// is rejected.
	MaxAttributes = 128
	// MaxHistogramBuckets bounds the buckets of one histogram data point
	// (explicit, or positive plus negative exponential); a point with more is
	// rejected. The SDKs' default exponential histogram has 160 per sign.
	MaxHistogramBuckets = 1024
	// QueueDepth bounds the decoded requests waiting to be processed; when
	// full, requests get 503 with Retry-After and the exporter retries.
	QueueDepth = 256
	// MaxQueueBytes bounds the memory of the decoded requests waiting to be
	// processed, estimated as body bytes plus 160 bytes per message; when
	// reached, requests get 503 with Retry-After.
	MaxQueueBytes = 64 << 20
	// MaxCumulativeSeries bounds the cumulative series whose previous point
	// is remembered; the points of a new series past it are counted in
	// Stats.CumulativeSeriesDropped and skipped.
	MaxCumulativeSeries = 100000
	// CumulativeTTL is how long a cumulative series' previous point is kept
	// without a new point; after it, the next point is a first point again.
	CumulativeTTL = 30 * time.Minute
	// RetryAfter is the Retry-After of a 503, in seconds.
	RetryAfter = 1
	// logEvery is how often one kind of repeated problem is logged at most.
	logEvery = time.Minute
)

// ErrNoCredentials is returned by New when User or Password is empty and
// Config.InsecureNoAuth is not set.
var ErrNoCredentials = errors.New("otlp: User and Password are required (set InsecureNoAuth to accept requests from anyone)")

// Config configures a Receiver.
type Config struct {
	// Sink receives the measurements; required.
	Sink input.Sink
	// User and Password are the Basic credentials every request must carry
	// (the HTTPS drain's). Both are required unless InsecureNoAuth is set.
	User, Password string
	// InsecureNoAuth accepts requests without credentials. New logs a warning.
	InsecureNoAuth bool
	// Apps, when set, turns on multi-app mode as for the drain: User and
	// Password must be empty, and every request carries an app's name and
	// token (internal/appauth); the app travels with its measurements.
	Apps *appauth.Keyring
	// AppStats, when set with Apps, counts per app the log lines of its
	// requests.
	AppStats *appstats.Table
	// SourceAttributes names the attributes whose value is a measurement's
	// source, in order of preference: the first one present on the record or
	// point, then on its resource, wins. Empty: sources come from the log
	// body only.
	SourceAttributes []string
	// DynoNames says how Fir dyno names in sources are kept.
	DynoNames DynoNames
	// Workers is the number of processing goroutines; 0 means GOMAXPROCS.
	Workers int
	// Logger receives warnings (at most one per kind and minute); nil means
	// slog.Default(). Credentials and bodies are never logged.
	Logger *slog.Logger
	// Now is the clock for arrival times and the cumulative series' ages;
	// nil means time.Now.
	Now func() time.Time
	// Budget bounds the request bytes being read, inflated and decoded at
	// once, shared with the worker's other HTTP servers; each request takes
	// its body's bytes as they arrive, its inflated bytes as they are
	// inflated and an estimate of its decoded messages before decoding.
	// Beyond it a request gets 503 with Retry-After (Stats.Busy). nil
	// means a Budget of budget.Default for this Receiver alone.
	Budget *budget.Budget
}

// Stats are the cumulative counters of a Receiver (Queued, QueuedBytes and
// CumulativeSeries are current values).
type Stats struct {
	Requests     uint64 `metric:"requests"`                         // POSTs to LogsPath or MetricsPath
	Accepted     uint64 `metric:"-"`                                // requests queued (answered 200)
	Unauthorized uint64 `metric:"unauthorized,drop"`                // missing or wrong credentials (401)
	TooLarge     uint64 `metric:"too_large,drop"`                   // bodies over MaxBodyBytes (413)
	GzipBombs    uint64 `metric:"gzip_bombs too_large,drop"`        // gzip bodies inflating beyond MaxDecodedBytes (413)
	TooManyMsgs  uint64 `metric:"too_many_messages too_large,drop"` // bodies of more than MaxMessages messages, refused before decoding (413)
	Unsupported  uint64 `metric:"unsupported,drop"`                 // other content types or encodings (415)
	Malformed    uint64 `metric:"malformed,drop"`                   // bodies that did not decompress or decode (400), TooDeep included
	TooDeep      uint64 `metric:"too_deep,drop"`                    // of Malformed: bodies nested deeper than MaxNesting
	QueueFull    uint64 `metric:"queue_full,drop"`                  // refused because the queue was full (503)
	Busy         uint64 `metric:"busy,drop"`                        // refused because the budget of request bytes in flight was exhausted (503)
	Closing      uint64 `metric:"queue_full,drop"`                  // refused because the Receiver was closing (503)

	LogRecords uint64 `metric:"log_records"`                    // log records accepted
	DataPoints uint64 `metric:"data_points"`                    // metric data points accepted
	Rejected   uint64 `metric:"rejected,drop"`                  // records and points rejected in partial_success, for the reasons below
	TooMany    uint64 `metric:"rejected_too_many,drop"`         // of Rejected: past MaxRecords in a request
	TooManyAtt uint64 `metric:"rejected_attributes,drop"`       // of Rejected: over MaxAttributes
	Invalid    uint64 `metric:"rejected_invalid,drop"`          // of Rejected: inconsistent points (bucket counts, scale, name), over MaxHistogramBuckets, and the three below
	Negative   uint64 `metric:"rejected_negative,drop"`         // of Invalid: negative values on monotonic delta sums
	StartAfter uint64 `metric:"rejected_start_after_time,drop"` // of Invalid: points whose start_time_unix_nano is after their time_unix_nano
	Unsafe     uint64 `metric:"rejected_unsafe_names,drop"`     // of Invalid: names or sources with control, format or bidirectional-override characters (metric.UnsafeText)
	Summaries  uint64 `metric:"rejected_summaries,drop"`        // of Rejected: Summary points (not converted)

	NonStringBodies uint64 `metric:"skipped,drop"` // log records whose body is not a string (no metric in them)
	NoValue         uint64 `metric:"skipped,drop"` // points without a value or flagged "no recorded value", skipped
	Unplaceable     uint64 `metric:"skipped,drop"` // histogram points whose values cannot be placed (beyond float64, one unbounded bucket without sum), skipped

	CumulativeFirst         uint64 `metric:"-"`                                      // first points of cumulative series, kept as the reference
	CumulativeResets        uint64 `metric:"cumulative_resets"`                      // resets of cumulative series (start time changed or value went down)
	CumulativeOutOfOrder    uint64 `metric:"skipped,drop"`                           // cumulative points not newer than the previous one, skipped
	CumulativeSeriesDropped uint64 `metric:"cumulative_series_dropped skipped,drop"` // points of new cumulative series past MaxCumulativeSeries, skipped
	CumulativeSeries        int    `metric:"cumulative_series,gauge"`                // cumulative series remembered now

	Queued      int   `metric:"queued,gauge"` // requests waiting to be processed now
	QueuedBytes int64 `metric:"-"`            // their estimated memory (see MaxQueueBytes)

	Input input.Stats `metric:",only=lines measurements rejected_lines rejected_pairs overlong_lines"` // log bodies through the l2met parser
}

// Receiver is the OTLP/HTTP http.Handler. Safe for concurrent use.
type Receiver struct {
	cfg        Config
	proc       *input.Processor
	sink       input.Sink
	start      uint64          // unix nanoseconds when New ran
	auth       *httpauth.Basic // the drain's credentials
	sourceKeys map[string]int  // SourceAttributes → preference (0 best)

	mu     sync.Mutex // guards closed and sends on queue
	closed bool
	queue  chan job
	wg     sync.WaitGroup

	decoding chan struct{} // MaxConcurrentDecodes slots
	budget   *budget.Budget

	cum cumulative

	gzips sync.Pool // of *gzip.Reader

	queuedBytes                                                         atomic.Int64
	requests, accepted, unauthorized, tooLarge, unsupported, malformed  atomic.Uint64
	gzipBombs, tooDeep, tooManyMessages                                 atomic.Uint64
	busy, queueFull, closing, logRecords, dataPoints, rejected, tooMany atomic.Uint64
	tooManyAtt, invalid, summaries, nonString, noValue, unplaceable     atomic.Uint64
	negative, startAfter, unsafe                                        atomic.Uint64
	cumFirst, cumResets, cumOutOfOrder, cumDropped                      atomic.Uint64
	throttled                                                           *throttle.Logger // problems, at most once per logEvery per kind
}

type job struct {
	logs    *logspb.LogsData
	metrics *metricspb.MetricsData
	size    int64
	arrival time.Time
	app     string // the authenticated app (Config.Apps), else ""
}

// New returns a Receiver and starts its processing goroutines. Call Close to
// stop them.
func New(cfg Config) (*Receiver, error) {
	if cfg.Sink == nil {
		return nil, errors.New("otlp: nil Sink")
	}
	if cfg.Apps != nil && (cfg.User != "" || cfg.Password != "" || cfg.InsecureNoAuth) {
		return nil, errors.New("otlp: Apps excludes User, Password and InsecureNoAuth")
	}
	if cfg.Apps == nil && !cfg.InsecureNoAuth && (cfg.User == "" || cfg.Password == "") {
		return nil, ErrNoCredentials
	}
	if cfg.Workers < 0 {
		return nil, errors.New("otlp: negative Workers")
	}
	cfg.Workers = cmp.Or(cfg.Workers, runtime.GOMAXPROCS(0))
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Receiver{
		cfg:        cfg,
		throttled:  throttle.New(cfg.Logger, logEvery, cfg.Now),
		start:      uint64(cfg.Now().UnixNano()),
		auth:       httpauth.NewBasic(cfg.User, cfg.Password),
		sourceKeys: make(map[string]int, len(cfg.SourceAttributes)),
		queue:      make(chan job, QueueDepth),
		decoding:   make(chan struct{}, MaxConcurrentDecodes),
		budget:     cfg.Budget,
		cum:        cumulative{series: make(map[uint64]*prevPoint), max: MaxCumulativeSeries},
	}
	if r.budget == nil {
		r.budget = budget.New(budget.Default)
	}
	for i, k := range cfg.SourceAttributes {
		if _, dup := r.sourceKeys[k]; !dup && k != "" {
			r.sourceKeys[k] = i
		}
	}
	r.sink = cfg.Sink
	if cfg.DynoNames == DynoType {
		r.sink = &typeSink{next: cfg.Sink}
	}
	var err error
	r.proc, err = input.NewProcessor(r.sink, input.Config{Logger: cfg.Logger, Now: cfg.Now, Apps: cfg.AppStats})
	if err != nil {
		return nil, err
	}
	if cfg.InsecureNoAuth {
		cfg.Logger.Warn("otlp: InsecureNoAuth is set: " + LogsPath + " and " + MetricsPath + " accept telemetry from anyone")
	}
	r.wg.Add(cfg.Workers)
	for range cfg.Workers {
		go r.work()
	}
	return r, nil
}

// Register registers the Receiver's paths on mux.
func (r *Receiver) Register(mux *http.ServeMux) {
	mux.Handle(LogsPath, r)
	mux.Handle(MetricsPath, r)
}

// format is a request's body format.
type format uint8

const (
	formatProto format = iota
	formatJSON
)

// ServeHTTP serves LogsPath and MetricsPath.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	logs := req.URL.Path == LogsPath
	if !logs && req.URL.Path != MetricsPath {
		http.NotFound(w, req)
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "otlp: "+req.URL.Path+" accepts POST only", http.StatusMethodNotAllowed)
		return
	}
	r.requests.Add(1)
	f, ok := bodyFormat(req.Header.Get("Content-Type"))
	app, authOK := r.authorized(req)
	if !authOK {
		r.unauthorized.Add(1)
		w.Header().Set("WWW-Authenticate", `Basic realm="dynometrics otlp", charset="UTF-8"`)
		writeStatus(w, f, http.StatusUnauthorized, codeUnauthenticated, "otlp: missing or wrong credentials")
		return
	}
	if !ok {
		r.unsupported.Add(1)
		writeStatus(w, f, http.StatusUnsupportedMediaType, codeInvalidArgument,
			"otlp: Content-Type must be application/x-protobuf or application/json")
		return
	}
	bufs := bufferPool.Get().(*buffers)
	defer putBufs(bufs)
	// Every byte of the request is taken from the budget as it arrives or is
	// inflated or decoded, and given back once the request is queued (its
	// memory then counts in MaxQueueBytes) or refused.
	charge := r.budget.Reader(req.Body)
	defer charge.Release()
	body, status, err := r.readBody(req, charge, bufs)
	if err != nil {
		switch {
		case errors.Is(err, budget.ErrExhausted):
			r.refuseBusy(w, f, req)
			return
		case errors.Is(err, errBomb):
			r.gzipBombs.Add(1)
		case status == http.StatusRequestEntityTooLarge:
			r.tooLarge.Add(1)
		case status == http.StatusUnsupportedMediaType:
			r.unsupported.Add(1)
		case status == http.StatusServiceUnavailable:
			// The client went away while waiting for a decoding slot.
		default:
			r.malformed.Add(1)
		}
		r.warn(problemBody, "otlp: request refused", "path", req.URL.Path, "status", status, "err", err)
		writeStatus(w, f, status, codeInvalidArgument, err.Error())
		return
	}
	var data proto.Message
	if logs {
		data = new(logspb.LogsData)
	} else {
		data = new(metricspb.MetricsData)
	}
	var messages int
	if f == formatJSON {
		messages = countJSON(body)
	} else {
		messages = countProto(body, data.ProtoReflect().Descriptor(), MaxMessages)
	}
	if messages > MaxMessages {
		r.tooManyMessages.Add(1)
		r.warn(problemBody, "otlp: request refused", "path", req.URL.Path, "status", http.StatusRequestEntityTooLarge, "err", "too many messages")
		writeStatus(w, f, http.StatusRequestEntityTooLarge, codeInvalidArgument,
			"otlp: more than "+strconv.Itoa(MaxMessages)+" messages in the body: send smaller batches")
		return
	}
	if !charge.Take(int64(messages) * decodedWeight) {
		r.refuseBusy(w, f, req)
		return
	}
	j := job{size: int64(len(body)) + int64(messages)*decodedWeight, arrival: r.cfg.Now(), app: app}
	if err := decode(body, f, data); err != nil {
		r.malformed.Add(1)
		if strings.Contains(err.Error(), "recursion depth") {
			// proto and protojson report their RecursionLimit so, unexported.
			r.tooDeep.Add(1)
		}
		// The decoder's error may quote a token of the body: it goes back to
		// the sender, not into the log.
		r.warn(problemBody, "otlp: malformed body", "path", req.URL.Path, "bytes", len(body))
		writeStatus(w, f, http.StatusBadRequest, codeInvalidArgument, "otlp: "+err.Error())
		return
	}
	var res result
	switch d := data.(type) {
	case *logspb.LogsData:
		j.logs, res = d, r.checkLogs(d)
	case *metricspb.MetricsData:
		j.metrics, res = d, r.checkMetrics(d)
	}
	if res.accepted > 0 {
		if msg := r.enqueue(j); msg != "" {
			retryLater(w, f, msg)
			return
		}
		if logs {
			r.logRecords.Add(uint64(res.accepted))
		} else {
			r.dataPoints.Add(uint64(res.accepted))
		}
	}
	if res.rejected > 0 {
		// Counted once answered: a request refused with 503 comes again.
		r.rejected.Add(uint64(res.rejected))
		r.tooMany.Add(uint64(res.tooMany))
		r.tooManyAtt.Add(uint64(res.tooManyAtt))
		r.invalid.Add(uint64(res.invalid))
		r.negative.Add(uint64(res.negative))
		r.startAfter.Add(uint64(res.startAfter))
		r.unsafe.Add(uint64(res.unsafe))
		r.summaries.Add(uint64(res.summaries))
		r.warn(problemRejected, "otlp: records rejected", "path", req.URL.Path, "rejected", res.rejected, "first", res.reason)
	}
	writeResponse(w, f, logs, res)
}

// refuseBusy answers 503 with Retry-After to a request the budget of bytes
// in flight has no room for, and counts it.
func (r *Receiver) refuseBusy(w http.ResponseWriter, f format, req *http.Request) {
	r.busy.Add(1)
	r.warn(problemBusy, "otlp: request bytes in flight at their bound: answering 503", "path", req.URL.Path,
		"busy", r.busy.Load(), "in_flight", r.budget.Stats().Used)
	retryLater(w, f, "otlp: busy, retry")
}

// retryLater answers 503 with Retry-After: the exporter sends the request
// again.
func retryLater(w http.ResponseWriter, f format, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(RetryAfter))
	writeStatus(w, f, http.StatusServiceUnavailable, codeUnavailable, msg)
}

// bodyFormat maps a Content-Type to a format; ok is false for another type
// (the format is then protobuf, for the error answer).
func bodyFormat(ct string) (format, bool) {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return formatProto, false
	}
	switch mt {
	case "application/x-protobuf", "application/protobuf":
		return formatProto, true
	case "application/json":
		return formatJSON, true
	}
	return formatProto, false
}

// authorized checks the Basic credentials as the drain does
// (internal/httpauth).
func (r *Receiver) authorized(req *http.Request) (app string, ok bool) {
	if r.cfg.Apps != nil {
		return r.cfg.Apps.Check(req)
	}
	return "", r.cfg.InsecureNoAuth || r.auth.Check(req)
}

// readBody reads the body through charge within MaxBodyBytes and inflates
// it within MaxDecodedBytes, charging the inflated bytes too. On error it
// returns the HTTP status to answer.
func (r *Receiver) readBody(req *http.Request, charge *budget.Reader, bufs *buffers) ([]byte, int, error) {
	enc := req.Header.Get("Content-Encoding")
	if enc != "" && enc != "identity" && enc != "gzip" {
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("otlp: Content-Encoding %.32q: want gzip or none", enc)
	}
	if req.ContentLength > MaxBodyBytes {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("otlp: body of %d bytes exceeds %d", req.ContentLength, MaxBodyBytes)
	}
	raw, err := input.ReadBody(bufs.raw[:0], charge, MaxBodyBytes, req.ContentLength, bufferQuantum)
	bufs.raw = raw[:0]
	if err != nil {
		if errors.Is(err, budget.ErrExhausted) {
			return nil, http.StatusServiceUnavailable, err
		}
		if errors.Is(err, input.ErrTooLarge) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("otlp: body exceeds %d bytes", MaxBodyBytes)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("otlp: reading body: %w", err)
	}
	// From here the request holds memory in proportion to its decoded size:
	// at most MaxConcurrentDecodes requests at once.
	select {
	case r.decoding <- struct{}{}:
		bufs.slot = r.decoding
	case <-req.Context().Done():
		return nil, http.StatusServiceUnavailable, fmt.Errorf("otlp: request ended while waiting to decode: %w", req.Context().Err())
	}
	if enc != "gzip" {
		return raw, 0, nil
	}
	body, err := r.gunzip(bufs.inflated[:0], raw, charge)
	bufs.inflated = body[:0]
	if err != nil {
		if errors.Is(err, budget.ErrExhausted) {
			return nil, http.StatusServiceUnavailable, err
		}
		if errors.Is(err, input.ErrTooLarge) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("otlp: decompressed body exceeds %d bytes: %w", MaxDecodedBytes, errBomb)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("otlp: gzip: %w", err)
	}
	return body, 0, nil
}

var errBomb = errors.New("gzip bomb")

// gunzip inflates raw within MaxDecodedBytes. klauspost/compress's gzip is
// the project's compression dependency already (remote write's snappy), and
// about twice as fast as compress/gzip at inflating.
func (r *Receiver) gunzip(dst, raw []byte, charge *budget.Reader) ([]byte, error) {
	zr, _ := r.gzips.Get().(*gzip.Reader)
	if zr == nil {
		zr = new(gzip.Reader) // what gzip.NewReader does before Reset
	}
	defer r.gzips.Put(zr)
	if err := zr.Reset(bytes.NewReader(raw)); err != nil {
		return dst, err
	}
	return input.ReadBody(dst, charge.Wrap(zr), MaxDecodedBytes, -1, bufferQuantum)
}

// buffers are the body buffers of one request. Decoding copies every string
// and byte field out of the body, so they are reused once the body is
// decoded. Only buffers of at most maxPooledBuffer bytes are kept.
type buffers struct {
	raw, inflated []byte
	slot          chan struct{} // the decoding slot held, released by putBufs
}

const (
	maxPooledBuffer = 1 << 20
	bufferQuantum   = 32 << 10 // buffers grow by doubling from this
)

var bufferPool = sync.Pool{New: func() any { return new(buffers) }}

func putBufs(b *buffers) {
	if b.slot != nil {
		<-b.slot
		b.slot = nil
	}
	if cap(b.raw) > maxPooledBuffer {
		b.raw = nil
	}
	if cap(b.inflated) > maxPooledBuffer {
		b.inflated = nil
	}
	bufferPool.Put(b)
}

// decode unmarshals a body into m, bounding its nesting by MaxNesting.
func decode(body []byte, f format, m proto.Message) error {
	if f == formatJSON {
		// DiscardUnknown: OTLP/JSON receivers must ignore unknown fields.
		return protojson.UnmarshalOptions{DiscardUnknown: true, RecursionLimit: MaxNesting}.Unmarshal(body, m)
	}
	return proto.UnmarshalOptions{RecursionLimit: MaxNesting}.Unmarshal(body, m)
}

// enqueue queues j, or returns why it cannot: the answer of a 503.
func (r *Receiver) enqueue(j job) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		r.closing.Add(1)
		return "otlp: shutting down, retry"
	}
	if r.queuedBytes.Add(j.size) <= MaxQueueBytes {
		select {
		case r.queue <- j:
			r.accepted.Add(1)
			return ""
		default:
		}
	}
	r.queuedBytes.Add(-j.size)
	r.queueFull.Add(1)
	r.warn(problemQueue, "otlp: queue full: answering 503", "queued", len(r.queue))
	return "otlp: queue full, retry"
}

// work processes queued requests until the queue is closed and empty.
func (r *Receiver) work() {
	defer r.wg.Done()
	s := r.proc.Session()
	defer s.Release()
	buf := make([]metric.Measurement, 0, input.SinkBatch)
	for j := range r.queue {
		s.SetArrival(j.arrival)
		s.SetApp(j.app)
		if j.logs != nil {
			r.processLogs(s, j.logs, j.arrival)
			s.Flush()
		} else {
			buf = r.processMetrics(buf[:0], j.metrics, j.arrival, j.app)
			if len(buf) > 0 {
				r.sink.Add(buf)
				clear(buf)
			}
		}
		r.queuedBytes.Add(-j.size)
	}
}

// Close refuses further requests (503, so the exporter retries), then waits
// until every queued request has reached the Sink or ctx ends. Call it after
// the HTTP server stopped accepting requests.
func (r *Receiver) Close(ctx context.Context) error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.queue)
	}
	r.mu.Unlock()
	if err := input.Wait(ctx, &r.wg); err != nil {
		return fmt.Errorf("otlp: close: %d requests still queued: %w", len(r.queue), err)
	}
	return nil
}

// Stats returns the cumulative counters. Safe for concurrent use.
func (r *Receiver) Stats() Stats {
	st := Stats{
		Requests: r.requests.Load(), Accepted: r.accepted.Load(), Unauthorized: r.unauthorized.Load(),
		TooLarge: r.tooLarge.Load(), GzipBombs: r.gzipBombs.Load(), TooManyMsgs: r.tooManyMessages.Load(), Unsupported: r.unsupported.Load(),
		Malformed: r.malformed.Load(), TooDeep: r.tooDeep.Load(),
		Busy: r.busy.Load(), QueueFull: r.queueFull.Load(), Closing: r.closing.Load(),
		LogRecords: r.logRecords.Load(), DataPoints: r.dataPoints.Load(), Rejected: r.rejected.Load(),
		TooMany: r.tooMany.Load(), TooManyAtt: r.tooManyAtt.Load(), Invalid: r.invalid.Load(), Summaries: r.summaries.Load(),
		Negative: r.negative.Load(), StartAfter: r.startAfter.Load(), Unsafe: r.unsafe.Load(),
		NonStringBodies: r.nonString.Load(), NoValue: r.noValue.Load(), Unplaceable: r.unplaceable.Load(),
		CumulativeFirst: r.cumFirst.Load(), CumulativeResets: r.cumResets.Load(),
		CumulativeOutOfOrder: r.cumOutOfOrder.Load(), CumulativeSeriesDropped: r.cumDropped.Load(),
		Queued: len(r.queue), QueuedBytes: r.queuedBytes.Load(),
		Input: r.proc.Stats(),
	}
	r.cum.mu.Lock()
	st.CumulativeSeries = len(r.cum.series)
	r.cum.mu.Unlock()
	return st
}

// problem kinds, each logged at most once per logEvery.
const (
	problemBody = iota
	problemRejected
	problemQueue
	problemCumulative
	problemBusy
	problemPoint
)

// warn logs at most once per logEvery for each kind of problem.
func (r *Receiver) warn(kind int, msg string, args ...any) {
	r.throttled.Log(slog.LevelWarn, strconv.Itoa(kind), msg, args...)
}
