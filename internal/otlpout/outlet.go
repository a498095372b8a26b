package otlpout

import (
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/outlet"
	"github.com/dynometrics/dynometrics/internal/throttle"
)

// Outlet sends flushed buckets to an OTLP/HTTP metrics endpoint. It
// implements outlet.Outlet. Safe for concurrent use.
type Outlet struct {
	log          *slog.Logger
	sender       *outlet.HTTPSender
	*outlet.Base          // Close and the skeleton
	enc          *encoder // guarded by Base
	stats        Stats    // guarded by Base

	partial, partialDropped, badResponses atomic.Int64
	throttled                             *throttle.Logger
}

var _ outlet.Outlet = (*Outlet)(nil)

// Stats are the outlet's cumulative counters since New, plus its queue's;
// the metric tags name the self-metrics under worker.outlet.otlp.
type Stats struct {
	outlet.Stats   `metric:""` // buckets (including those after Close), closed drops, the queue
	Series         int64       `metric:"-"`                            // input series seen (a volume)
	Points         int64       `metric:"-"`                            // data points encoded into requests
	Requests       int64       `metric:"-"`                            // request bodies handed to the queue
	EncodeErrors   int64       `metric:"encode_errors,drop"`           // buckets that could not be encoded (logged; their Done gets the error)
	Late           int64       `metric:"late_series,drop"`             // cumulative series not sent because their bucket was not newer than the last one sent (totals still updated)
	Unknown        int64       `metric:"unknown_kind,drop"`            // input series with an unknown Kind, skipped
	Evicted        int64       `metric:"evicted_series,drop"`          // cumulative sums and histograms forgotten at MaxTrackedSeries / MaxTrackedHistograms
	Resets         int64       `metric:"histogram_resets"`             // cumulative histograms restarted because shared totals showed buckets flushed elsewhere (nothing lost)
	TrackedSeries  int         `metric:"tracked_series,gauge"`         // cumulative sums kept now
	TrackedHists   int         `metric:"tracked_series,gauge"`         // cumulative histograms kept now
	Rejected       int64       `metric:"rejected_requests,drop"`       // responses refused for good (4xx other than 401/403/429, 5xx other than 502/503/504): batch dropped (also in Queue.DroppedPermanent)
	ServerErrors   int64       `metric:"-"`                            // responses 429, 502, 503, 504: retried (counted in Queue.Failed)
	Partial        int64       `metric:"-"`                            // accepted responses that carried a partial_success; the points they refused are PartialDropped
	PartialDropped int64       `metric:"partial_rejected_points,drop"` // data points the receiver rejected in partial_success (lost: OTLP says not to retry them)
	BadResponses   int64       `metric:"bad_responses"`                // 2xx responses whose body did not decode (the batch counts as accepted)
}

// New validates cfg and returns a running Outlet. The error wraps ErrConfig
// and never contains header values.
func New(cfg Config) (*Outlet, error) {
	cfg, err := cfg.check()
	if err != nil {
		return nil, err
	}
	o := &Outlet{
		log:       cfg.Logger.With("outlet", cfg.Queue.Name),
		enc:       newEncoder(cfg),
		throttled: throttle.New(cfg.Logger.With("outlet", cfg.Queue.Name), PartialLogEvery, cfg.Now),
	}
	o.sender = o.newSender(cfg)
	o.Base = outlet.NewBase(cfg.Queue.Name, o.sender, cfg.Queue)
	return o, nil
}

// Write encodes b into one or more requests (at most MaxPointsPerRequest
// data points each) and queues them. It does not keep b. A bucket that
// cannot be encoded is not sent at all: a partial bucket would make the
// cumulative series it left out look reset.
func (o *Outlet) Write(b *aggregate.Bucket) { o.Base.Write(b, o.encode) }

// encode runs with the Base's lock held.
func (o *Outlet) encode(b *aggregate.Bucket) ([]outlet.Batch, error) {
	o.stats.Series += int64(len(b.Series))
	var batches []outlet.Batch
	err := o.enc.encode(b, func(body []byte, n int) {
		o.stats.Points += int64(n)
		o.stats.Requests++
		batches = append(batches, outlet.Batch{Body: body, N: n, Time: b.Start})
	})
	if err != nil {
		o.stats.EncodeErrors++
		o.log.Error("otlp: bucket dropped: cannot encode", "bucket", b.Start, "series", len(b.Series), "err", err)
		return nil, err
	}
	return batches, nil
}

// Stats returns the outlet's counters.
func (o *Outlet) Stats() Stats {
	var st Stats
	st.Stats = o.Base.Stats(func() {
		st = o.stats
		e := o.enc
		st.Late, st.Unknown, st.Resets = e.late, e.unknown, e.resets
		st.Evicted = e.sums.Evicted() + e.hists.Evicted()
		st.TrackedSeries, st.TrackedHists = e.sums.Len(), e.hists.Len()
	})
	st.Rejected, st.ServerErrors = o.sender.Rejected(), o.sender.Retried()
	st.Partial, st.PartialDropped, st.BadResponses = o.partial.Load(), o.partialDropped.Load(), o.badResponses.Load()
	return st
}

// newSender returns the sender: 429, 502, 503 and 504 are retried (after
// the Retry-After delay when given), every other 4xx and 5xx but 401 and
// 403 drops the batch, as the OTLP specification says; a 2xx's
// partial_success is counted and logged, not retried.
func (o *Outlet) newSender(cfg Config) *outlet.HTTPSender {
	h := http.Header{"User-Agent": {UserAgent}, "Content-Type": {"application/x-protobuf"}}
	if cfg.Protocol == HTTPJSON {
		h.Set("Content-Type", "application/json")
	}
	if cfg.Compression == CompressionGzip {
		h.Set("Content-Encoding", "gzip")
	}
	return outlet.NewHTTPSender(outlet.HTTPConfig{
		Name: "otlp", URL: cfg.Endpoint, Unit: "points", Client: cfg.HTTPClient, Timeout: cfg.Timeout,
		Header: h, Credentials: maps.Clone(cfg.Headers),
		Retryable: func(code int) bool {
			return slices.Contains([]int{http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}, code)
		},
		Message:  statusMessage,
		Accepted: o.accepted,
	})
}

// accepted reads the partial_success of a 2xx answer.
func (o *Outlet) accepted(h http.Header, body []byte, readErr error, b *outlet.Batch) {
	if readErr != nil {
		// The receiver said 2xx: the data is in. Only the details of a
		// partial success could be lost.
		o.bad(fmt.Errorf("reading the body: %w", readErr))
		return
	}
	ps, err := ParseResponse(h.Get("Content-Type"), body)
	if err != nil {
		o.bad(err)
		return
	}
	if ps.RejectedDataPoints > 0 || ps.ErrorMessage != "" {
		o.partial.Add(1)
		o.partialDropped.Add(max(ps.RejectedDataPoints, 0))
		o.throttled.Warn("otlp: receiver rejected part of a request (not retried; logged at most once a minute, counted in worker.outlet.otlp.partial_rejected_points)",
			"rejected_points", ps.RejectedDataPoints, "points", b.N, "message", o.sender.Redact(truncate(ps.ErrorMessage)))
	}
}

// bad counts and logs (at most once a minute) a 2xx response whose body did
// not decode.
func (o *Outlet) bad(err error) {
	o.badResponses.Add(1)
	o.throttled.Warn("otlp: accepted, but the response body does not decode (logged at most once a minute)", "err", err)
}

func truncate(s string) string {
	if len(s) > outlet.MaxErrorBody {
		s = s[:outlet.MaxErrorBody] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// Endpoint returns the URL requests go to, without its query or user
// information: safe to log.
func (o *Outlet) Endpoint() string { return o.sender.Endpoint() }
