package promwrite

import (
	"log/slog"
	"maps"
	"net/http"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/outlet"
)

// Outlet sends flushed buckets to a Prometheus remote-write endpoint. It
// implements outlet.Outlet. Safe for concurrent use.
type Outlet struct {
	cfg          Config
	log          *slog.Logger
	sender       *outlet.HTTPSender
	*outlet.Base          // Close and the skeleton
	enc          *encoder // guarded by Base
	stats        Stats    // guarded by Base
}

var _ outlet.Outlet = (*Outlet)(nil)

// Stats are the outlet's cumulative counters since New, plus its queue's;
// the metric tags name the self-metrics under worker.outlet.remote_write.
type Stats struct {
	outlet.Stats `metric:""` // buckets (including those after Close), closed drops, the queue
	Series       int64       `metric:"-"`                   // input series seen (a volume)
	Samples      int64       `metric:"-"`                   // time series encoded into requests (one sample each)
	Requests     int64       `metric:"-"`                   // request bodies handed to the queue
	Late         int64       `metric:"late,drop"`           // input series not sent because their bucket was not newer than the last one sent for them (totals still updated)
	Collisions   int64       `metric:"collisions,drop"`     // time series dropped because another one in the bucket had the same name and labels
	Unknown      int64       `metric:"unknown_kind,drop"`   // input series with an unknown Kind, skipped
	Evicted      int64       `metric:"totals_evicted,drop"` // tracked series forgotten at MaxTrackedSeries
	Tracked      int         `metric:"-"`                   // tracked series now (at most MaxTrackedSeries)
	Rejected     int64       `metric:"rejected,drop"`       // responses 4xx other than 401/403/429: batch dropped (also in Queue.DroppedPermanent)
	ServerErrors int64       `metric:"-"`                   // responses 5xx or 429: retried (counted in Queue.Failed)
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
		Base:   outlet.NewBase("remote_write", s, cfg.Queue),
		enc:    newEncoder(cfg.Prefix, tags, cfg.MaxTrackedSeries),
	}
	o.enc.now = cfg.Now
	return o, nil
}

// Write encodes b into one or more requests (at most MaxSeriesPerRequest time
// series each) and queues them. It does not keep b.
func (o *Outlet) Write(b *aggregate.Bucket) { o.Base.Write(b, o.encode) }

// encode runs with the Base's lock held.
func (o *Outlet) encode(b *aggregate.Bucket) ([]outlet.Batch, error) {
	o.stats.Series += int64(len(b.Series))
	collisions := o.enc.collisions
	var batches []outlet.Batch
	o.enc.encode(b, o.cfg.MaxSeriesPerRequest, func(body []byte, n int) {
		o.stats.Samples += int64(n)
		o.stats.Requests++
		batches = append(batches, outlet.Batch{Body: body, N: n, Time: b.Start})
	})
	if d := o.enc.collisions - collisions; d > 0 {
		o.log.Warn("promwrite: series with the same name and labels in one bucket, kept the first",
			"dropped", d, "bucket", b.Start)
	}
	return batches, nil
}

// Stats returns the outlet's counters.
func (o *Outlet) Stats() Stats {
	var st Stats
	st.Stats = o.Base.Stats(func() {
		st = o.stats
		st.Late, st.Collisions, st.Unknown = o.enc.late, o.enc.collisions, o.enc.unknown
		st.Evicted, st.Tracked = o.enc.tr.Evicted(), o.enc.tr.Len()
	})
	st.Rejected, st.ServerErrors = o.sender.Rejected(), o.sender.Retried()
	return st
}

// newSender returns the sender of cfg (checked). Every configured header
// value and the URL's query are redacted from its errors.
func newSender(cfg Config) *outlet.HTTPSender {
	hc := outlet.HTTPConfig{
		Name: "promwrite", URL: cfg.URL, Unit: "samples", Client: cfg.HTTPClient,
		Header: http.Header{
			"Content-Encoding":                  {"snappy"},
			"Content-Type":                      {"application/x-protobuf"},
			"X-Prometheus-Remote-Write-Version": {"0.1.0"},
			"User-Agent":                        {UserAgent},
		},
		Credentials: maps.Collect(maps.All(cfg.Headers)), // a copy, never nil
		User:        cfg.User, Password: cfg.Password,
	}
	if cfg.User == "" && cfg.BearerToken != "" {
		hc.Credentials["Authorization"] = "Bearer " + cfg.BearerToken
	}
	return outlet.NewHTTPSender(hc)
}
