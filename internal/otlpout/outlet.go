package otlpout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/outlet"
	"github.com/dynometrics/dynometrics/internal/redact"
)

// Outlet sends flushed buckets to an OTLP/HTTP metrics endpoint. It
// implements outlet.Outlet. Safe for concurrent use.
type Outlet struct {
	cfg    Config
	log    *slog.Logger
	sender *sender
	queue  *outlet.Queue

	mu     sync.Mutex // guards enc, closed and stats
	enc    *encoder
	closed bool
	stats  Stats
}

var _ outlet.Outlet = (*Outlet)(nil)

// Stats are the outlet's cumulative counters since New, plus its queue's.
type Stats struct {
	Buckets        int64 // buckets written (including those after Close)
	Series         int64 // input series seen
	Points         int64 // data points encoded into requests
	Requests       int64 // request bodies handed to the queue
	EncodeErrors   int64 // buckets that could not be encoded (logged; their Done gets the error)
	Late           int64 // cumulative series not sent because their bucket was not newer than the last one sent (totals still updated)
	Unknown        int64 // input series with an unknown Kind, skipped
	Evicted        int64 // cumulative sums and histograms forgotten at MaxTrackedSeries / MaxTrackedHistograms
	Resets         int64 // cumulative histograms restarted because shared totals showed buckets flushed elsewhere
	TrackedSeries  int   // cumulative sums kept now
	TrackedHists   int   // cumulative histograms kept now
	ClosedDrops    int64 // buckets written after Close, dropped
	Rejected       int64 // responses refused for good (4xx other than 401/403/429, 5xx other than 502/503/504): batch dropped (also in Queue.DroppedPermanent)
	ServerErrors   int64 // responses 429, 502, 503, 504: retried
	Partial        int64 // accepted responses that carried a partial_success
	PartialDropped int64 // data points the receiver rejected in partial_success (lost: OTLP says not to retry them)
	BadResponses   int64 // 2xx responses whose body did not decode (the batch counts as accepted)

	Queue outlet.QueueStats
}

// New validates cfg and returns a running Outlet. The error wraps ErrConfig
// and never contains header values.
func New(cfg Config) (*Outlet, error) {
	cfg, err := cfg.check()
	if err != nil {
		return nil, err
	}
	o := &Outlet{
		cfg:    cfg,
		log:    cfg.Logger.With("outlet", cfg.Queue.Name),
		sender: newSender(cfg),
		enc:    newEncoder(cfg),
	}
	o.queue = outlet.NewQueue(o.sender, cfg.Queue)
	return o, nil
}

// Write encodes b into one or more requests (at most MaxPointsPerRequest
// data points each) and queues them. It does not keep b.
func (o *Outlet) Write(b *aggregate.Bucket) {
	name := o.cfg.Queue.Name
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stats.Buckets++
	if o.closed {
		o.stats.ClosedDrops++
		if b.Done != nil {
			b.Done(name, fmt.Errorf("%s: %w: outlet closed", name, outlet.ErrDropped))
		}
		return
	}
	o.stats.Series += int64(len(b.Series))
	var batches []outlet.Batch
	err := o.enc.encode(b, func(body []byte, n int) {
		o.stats.Points += int64(n)
		o.stats.Requests++
		batches = append(batches, outlet.Batch{Body: body, N: n, Time: b.Start})
	})
	if err != nil {
		// Nothing of the bucket is sent: a partial bucket would make the
		// cumulative series it left out look reset.
		o.stats.EncodeErrors++
		o.log.Error("otlp: bucket dropped: cannot encode", "bucket", b.Start, "series", len(b.Series), "err", err)
		if b.Done != nil {
			b.Done(name, fmt.Errorf("%s: %w: %w", name, outlet.ErrDropped, err))
		}
		return
	}
	outlet.PushBucket(o.queue, name, b, batches)
}

// Close stops accepting buckets and delivers what is queued until ctx ends;
// the error (wrapping outlet.ErrUndelivered) counts what was dropped then.
func (o *Outlet) Close(ctx context.Context) error {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	return o.queue.Close(ctx)
}

// Stats returns the outlet's counters.
func (o *Outlet) Stats() Stats {
	o.mu.Lock()
	st := o.stats
	e := o.enc
	st.Late, st.Unknown, st.Resets = e.late, e.unknown, e.resets
	st.Evicted = e.sums.evicted + e.hists.evicted
	st.TrackedSeries, st.TrackedHists = e.sums.len(), e.hists.len()
	o.mu.Unlock()
	s := o.sender
	st.Rejected, st.ServerErrors = s.rejected.Load(), s.serverErrors.Load()
	st.Partial, st.PartialDropped, st.BadResponses = s.partial.Load(), s.partialDropped.Load(), s.badResponses.Load()
	st.Queue = o.queue.Stats()
	return st
}

// sender posts one batch. Safe for concurrent use.
type sender struct {
	client   *http.Client
	url      string
	display  string // redacted URL for errors
	header   http.Header
	redactor *redact.Redactor // header values and the URL query, in every form, removed from response text
	timeout  time.Duration
	log      *slog.Logger
	now      func() time.Time

	rejected, serverErrors, partial, partialDropped, badResponses atomic.Int64

	logMu       sync.Mutex
	nextPartial time.Time // next time a partial success may be logged
	nextBad     time.Time // next time an undecodable response may be logged
}

func newSender(cfg Config) *sender {
	u, _ := url.Parse(cfg.Endpoint) // checked
	h := http.Header{}
	for name, value := range cfg.Headers {
		h.Set(name, value)
	}
	if cfg.Protocol == HTTPJSON {
		h.Set("Content-Type", "application/json")
	} else {
		h.Set("Content-Type", "application/x-protobuf")
	}
	if cfg.Compression == CompressionGzip {
		h.Set("Content-Encoding", "gzip")
	}
	if h.Get("User-Agent") == "" {
		h.Set("User-Agent", UserAgent)
	}
	s := &sender{
		client: cfg.HTTPClient, url: cfg.Endpoint, display: redactedURL(u), header: h,
		timeout: cfg.Timeout, log: cfg.Logger.With("outlet", cfg.Queue.Name), now: cfg.Now,
	}
	var secrets []string
	for _, v := range cfg.Headers {
		if len(v) >= 4 { // redacting a 1-character value would mangle every message
			secrets = append(secrets, v)
		}
		// "Bearer xyz" and "Basic xyz": the token alone may be echoed.
		if _, tok, ok := strings.Cut(v, " "); ok && len(tok) >= 4 {
			secrets = append(secrets, tok)
		}
	}
	if u.RawQuery != "" {
		secrets = append(secrets, u.RawQuery)
	}
	s.redactor = redact.New(secrets...)
	return s
}

// redact replaces every secret in msg, in every form internal/redact knows.
func (s *sender) redact(msg string) string { return s.redactor.String(msg) }

// maxResponseBody bounds how much of a response body is read.
const maxResponseBody = 64 << 10

// Send implements outlet.Sender: 2xx is accepted (a partial_success is
// counted and logged, not retried, as OTLP says); 429, 502, 503 and 504 are
// retried after the Retry-After delay when given; 401 and 403 are retried
// as credentials errors; every other status drops the batch (ErrPermanent).
// Network errors and timeouts are retried.
func (s *sender) Send(ctx context.Context, b *outlet.Batch) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := outlet.Post(ctx, s.client, s.url, s.header, b.Body)
	if errors.Is(err, outlet.ErrPermanent) {
		return fmt.Errorf("otlp: POST %s: %w", s.display, outlet.ErrPermanent)
	}
	if err != nil {
		return s.redactor.Error(fmt.Errorf("otlp: POST %s: %d points: %w", s.display, b.N, err))
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if resp.StatusCode/100 == 2 {
		if rerr != nil {
			// The receiver said 2xx: the data is in. Only the details of
			// a partial success could be lost.
			s.bad(fmt.Errorf("reading the body: %w", rerr))
			return nil
		}
		ps, err := ParseResponse(resp.Header.Get("Content-Type"), body)
		if err != nil {
			s.bad(err)
			return nil
		}
		if ps.RejectedDataPoints > 0 || ps.ErrorMessage != "" {
			s.partial.Add(1)
			s.partialDropped.Add(max(ps.RejectedDataPoints, 0))
			s.logMu.Lock()
			now := s.now()
			logIt := !now.Before(s.nextPartial)
			if logIt {
				s.nextPartial = now.Add(PartialLogEvery)
			}
			s.logMu.Unlock()
			if logIt {
				s.log.Warn("otlp: receiver rejected part of a request (not retried; logged at most once a minute, counted in worker.outlet.otlp.partial_rejected_points)",
					"rejected_points", ps.RejectedDataPoints, "points", b.N, "message", s.redact(truncate(ps.ErrorMessage)))
			}
		}
		return nil
	}
	msg := s.redact(truncate(statusMessage(resp.Header.Get("Content-Type"), body)))
	err = fmt.Errorf("otlp: POST %s: %d points: HTTP %s: %q", s.display, b.N, resp.Status, msg)
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: %w", err, outlet.ErrUnauthorized)
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		s.serverErrors.Add(1)
		return outlet.RetryAfter(err, outlet.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()))
	}
	s.rejected.Add(1)
	return fmt.Errorf("%w: %w", err, outlet.ErrPermanent)
}

// bad counts and logs (at most once a minute) a 2xx response whose body did
// not decode.
func (s *sender) bad(err error) {
	s.badResponses.Add(1)
	s.logMu.Lock()
	now := s.now()
	logIt := !now.Before(s.nextBad)
	if logIt {
		s.nextBad = now.Add(PartialLogEvery)
	}
	s.logMu.Unlock()
	if logIt {
		s.log.Warn("otlp: accepted, but the response body does not decode (logged at most once a minute)", "err", err)
	}
}

func truncate(s string) string {
	if len(s) > MaxErrorBody {
		s = s[:MaxErrorBody] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// Endpoint returns the URL requests go to, without its query or user
// information: safe to log.
func (o *Outlet) Endpoint() string { return o.sender.display }
