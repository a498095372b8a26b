package promwrite

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

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/outlet"
	"github.com/dynometrics/dynometrics/internal/redact"
)

// Outlet sends flushed buckets to a Prometheus remote-write endpoint. It
// implements outlet.Outlet. Safe for concurrent use.
type Outlet struct {
	cfg    Config
	log    *slog.Logger
	sender *sender
	queue  *outlet.Queue

	mu     sync.Mutex // guards enc, closed and the counters below
	enc    *encoder
	closed bool
	stats  Stats
}

var _ outlet.Outlet = (*Outlet)(nil)

// Stats are the outlet's cumulative counters since New, plus its queue's.
type Stats struct {
	Buckets      int64 // buckets written (including those after Close)
	Series       int64 // input series seen
	Samples      int64 // time series encoded into requests (one sample each)
	Requests     int64 // request bodies handed to the queue
	Late         int64 // input series not sent because their bucket was not newer than the last one sent for them (totals still updated)
	Collisions   int64 // time series dropped because another one in the bucket had the same name and labels
	Unknown      int64 // input series with an unknown Kind, skipped
	Evicted      int64 // tracked series forgotten at MaxTrackedSeries
	Tracked      int   // tracked series now (at most MaxTrackedSeries)
	ClosedDrops  int64 // buckets written after Close, dropped
	Rejected     int64 // responses 4xx other than 401/403/429: batch dropped (also in Queue.DroppedPermanent)
	ServerErrors int64 // responses 5xx or 429: retried

	Queue outlet.QueueStats
}

// New validates cfg and returns a running Outlet. The error wraps ErrConfig
// and never contains credentials.
func New(cfg Config) (*Outlet, error) {
	cfg, tags, err := cfg.check()
	if err != nil {
		return nil, err
	}
	s := newSender(cfg)
	o := &Outlet{
		cfg:    cfg,
		log:    cfg.Logger.With("outlet", cfg.Queue.Name),
		sender: s,
		enc:    newEncoder(cfg.Prefix, tags, cfg.MaxTrackedSeries),
	}
	o.enc.now = cfg.Now
	o.queue = outlet.NewQueue(s, cfg.Queue)
	return o, nil
}

// Write encodes b into one or more requests (at most MaxSeriesPerRequest time
// series each) and queues them. It does not keep b.
func (o *Outlet) Write(b *aggregate.Bucket) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stats.Buckets++
	if o.closed {
		o.stats.ClosedDrops++
		if b.Done != nil {
			b.Done("remote_write", fmt.Errorf("remote_write: %w: outlet closed", outlet.ErrDropped))
		}
		return
	}
	o.stats.Series += int64(len(b.Series))
	collisions := o.enc.collisions
	var batches []outlet.Batch
	o.enc.encode(b, o.cfg.MaxSeriesPerRequest, func(body []byte, n int) {
		o.stats.Samples += int64(n)
		o.stats.Requests++
		batches = append(batches, outlet.Batch{Body: body, N: n, Time: b.Start})
	})
	outlet.PushBucket(o.queue, "remote_write", b, batches)
	if d := o.enc.collisions - collisions; d > 0 {
		o.log.Warn("promwrite: series with the same name and labels in one bucket, kept the first",
			"dropped", d, "bucket", b.Start)
	}
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
	st.Late, st.Collisions, st.Unknown = o.enc.late, o.enc.collisions, o.enc.unknown
	st.Evicted, st.Tracked = o.enc.tr.evicted, len(o.enc.tr.m)
	o.mu.Unlock()
	st.Rejected = o.sender.rejected.Load()
	st.ServerErrors = o.sender.serverErrors.Load()
	st.Queue = o.queue.Stats()
	return st
}

// sender posts one batch. Safe for concurrent use.
type sender struct {
	client  *http.Client
	url     string
	display string // redacted URL for errors
	header  http.Header
	redact  *redact.Redactor // secrets in every form, scrubbed from response bodies quoted in errors

	rejected, serverErrors atomic.Int64
}

func newSender(cfg Config) *sender {
	u, _ := url.Parse(cfg.URL) // checked
	h := http.Header{}
	h.Set("Content-Encoding", "snappy")
	h.Set("Content-Type", "application/x-protobuf")
	h.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	h.Set("User-Agent", UserAgent)
	s := &sender{client: cfg.HTTPClient, url: cfg.URL, display: redactedURL(u), header: h}
	for name, value := range cfg.Headers {
		h.Set(name, value)
	}
	// Every configured header value may be a key (X-API-Key); the query
	// may hold one too.
	secrets := []string{cfg.BearerToken, u.RawQuery}
	for _, v := range u.Query() {
		secrets = append(secrets, v...)
	}
	for _, v := range cfg.Headers {
		secrets = append(secrets, v)
	}
	switch {
	case cfg.User != "":
		req, _ := http.NewRequest(http.MethodPost, cfg.URL, nil)
		req.SetBasicAuth(cfg.User, cfg.Password)
		h.Set("Authorization", req.Header.Get("Authorization"))
	case cfg.BearerToken != "":
		h.Set("Authorization", "Bearer "+cfg.BearerToken)
	}
	s.redact = redact.New(secrets...).Basic(cfg.User, cfg.Password)
	return s
}

// Send implements outlet.Sender.
func (s *sender) Send(ctx context.Context, b *outlet.Batch) error {
	resp, err := outlet.Post(ctx, s.client, s.url, s.header, b.Body)
	if errors.Is(err, outlet.ErrPermanent) {
		return fmt.Errorf("promwrite: POST %s: %w", s.display, outlet.ErrPermanent)
	}
	if err != nil {
		return s.redact.Error(fmt.Errorf("promwrite: POST %s: %w", s.display, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
	msg := s.redact.String(strings.TrimSpace(strings.ToValidUTF8(string(body), "?")))
	err = fmt.Errorf("promwrite: POST %s: %d samples: HTTP %s: %q", s.display, b.N, resp.Status, msg)
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w: %w", err, outlet.ErrUnauthorized)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		s.serverErrors.Add(1)
		return err
	case resp.StatusCode >= 400:
		s.rejected.Add(1)
		return fmt.Errorf("%w: %w", err, outlet.ErrPermanent)
	}
	// 1xx/3xx that the client did not resolve: treat as a transient failure.
	s.serverErrors.Add(1)
	return err
}
