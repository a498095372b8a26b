package aggregate

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/dynometrics/dynometrics/internal/appstats"
	"github.com/dynometrics/dynometrics/internal/envcfg"
)

// Defaults applied by New to zero fields of Config.
const (
	// DefaultResolution is the bucket width (METRICS_RESOLUTION).
	DefaultResolution = 60 * time.Second
	// DefaultGrace is how long after a bucket's end late lines are still
	// accepted before the bucket is flushed.
	DefaultGrace = 10 * time.Second
	// DefaultMaxSeries bounds the series of one bucket (and 2× it the series
	// open across all buckets).
	DefaultMaxSeries = 100_000
	// DefaultMaxAge is how far in the past (relative to the clock) a
	// measurement's timestamp may be. Librato refuses measure times older
	// than about two hours; an hour leaves room for delivery retries.
	DefaultMaxAge = time.Hour
	// defaultFutureSlack is added to the resolution for the default MaxFuture.
	defaultFutureSlack = time.Minute
)

// Limits on Config values checked by New.
const (
	// MinResolution is the smallest accepted bucket width.
	MinResolution = time.Second
	// MaxResolution is the largest accepted bucket width.
	MaxResolution = 24 * time.Hour
	// MaxGrace is the largest accepted grace: open buckets are held in
	// memory for Resolution+Grace, so the grace bounds memory too.
	MaxGrace = time.Hour
)

// ErrConfig is wrapped by every error New returns for an invalid Config.
var ErrConfig = errors.New("aggregate: invalid config")

// Config configures an Aggregator. Zero fields take the documented defaults.
type Config struct {
	// Resolution is the bucket width: whole seconds, between MinResolution
	// and MaxResolution, dividing 24h evenly so that buckets align to
	// midnight UTC. Default DefaultResolution (60s).
	Resolution time.Duration

	// Grace is how long after a bucket's end (Start+Resolution) the bucket
	// stays open for late lines; Flush(now) returns the buckets with
	// Start+Resolution+Grace <= now. Zero means DefaultGrace (10s); use a
	// negative value for no grace at all. At most MaxGrace.
	Grace time.Duration

	// MaxSeries bounds the number of series of one bucket; all open buckets
	// together hold at most twice as many. Room is shared fairly: series
	// the previous buckets had keep their place, and neither one source nor,
	// in multi-app mode, one app can take all the room for new series (see
	// Stats.DroppedSeriesLimit, DroppedSourceShare, DroppedAppShare,
	// DroppedOpenLimit, and admit.go). A measurement refused a series is
	// dropped and counted. Default DefaultMaxSeries.
	MaxSeries int

	// MaxFuture is how far after the clock's now a measurement's timestamp
	// may lie. Further-future measurements are dropped (never clamped:
	// clamping would put a value in a bucket it does not belong to) and
	// counted in Stats.DroppedFuture. Default Resolution + 1 minute, which
	// tolerates ordinary clock skew between dynos and the worker.
	MaxFuture time.Duration

	// MaxAge is how far before the clock's now a measurement's timestamp may
	// lie. Older measurements are dropped and counted in Stats.DroppedOld.
	// Default DefaultMaxAge (1h).
	MaxAge time.Duration

	// Now is the clock Add checks MaxFuture and MaxAge against, to the whole
	// second (read once per Add call). Default time.Now. Flush takes its time
	// as an argument.
	Now func() time.Time

	// Apps, when set (multi-app mode), receives per app the measurements
	// given to Add and those dropped, by reason. Measurements without an
	// app are not counted there.
	Apps *appstats.Table
}

// withDefaults returns cfg with defaults applied, or an error wrapping
// ErrConfig that names the offending field.
func (cfg Config) withDefaults() (Config, error) {
	cfg.Resolution = cmp.Or(cfg.Resolution, DefaultResolution)
	if p := resolutionProblem(cfg.Resolution); p != "" {
		return cfg, fmt.Errorf("%w: Resolution %s: %s", ErrConfig, cfg.Resolution, p)
	}
	switch {
	case cfg.Grace == 0:
		cfg.Grace = DefaultGrace
	case cfg.Grace < 0:
		cfg.Grace = 0
	case cfg.Grace > MaxGrace:
		return cfg, fmt.Errorf("%w: Grace %s exceeds %s", ErrConfig, cfg.Grace, MaxGrace)
	}
	switch {
	case cfg.MaxSeries < 0:
		return cfg, fmt.Errorf("%w: MaxSeries %d is negative", ErrConfig, cfg.MaxSeries)
	case cfg.MaxFuture < 0:
		return cfg, fmt.Errorf("%w: MaxFuture %s is negative", ErrConfig, cfg.MaxFuture)
	case cfg.MaxAge < 0:
		return cfg, fmt.Errorf("%w: MaxAge %s is negative", ErrConfig, cfg.MaxAge)
	}
	cfg.MaxSeries = cmp.Or(cfg.MaxSeries, DefaultMaxSeries)
	cfg.MaxFuture = cmp.Or(cfg.MaxFuture, cfg.Resolution+defaultFutureSlack)
	cfg.MaxAge = cmp.Or(cfg.MaxAge, DefaultMaxAge)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg, nil
}

// resolutionProblem says what is wrong with a bucket width, or "".
func resolutionProblem(d time.Duration) string {
	switch {
	case d < MinResolution || d > MaxResolution:
		return fmt.Sprintf("outside [%s, %s]", MinResolution, MaxResolution)
	case d%time.Second != 0:
		return "not whole seconds"
	case (24*time.Hour)%d != 0:
		return "does not divide a day"
	}
	return ""
}

// Env is the aggregator's environment: the bucket width and the grace.
type Env struct {
	Resolution time.Duration `envconfig:"METRICS_RESOLUTION" default:"60s" accepts:"whole seconds from 1s to 24h that divide a day, e.g. 10s or 60s" desc:"bucket width"`
	Grace      time.Duration `envconfig:"METRICS_GRACE" default:"10s" accepts:"a duration from 0s (none) to 1h, e.g. 10s" desc:"wait after a bucket's end for late lines before flushing it (2s with -stdin)"`
	MaxSeries  int           `envconfig:"METRICS_MAX_SERIES" default:"100000" accepts:"a whole number from 1 to 10000000 (0: the default)" desc:"series per bucket this worker aggregates (2x that open in all buckets: the memory bound); with REDIS_URL a merged bucket holds up to this many per worker"`
}

// MaxMaxSeries bounds METRICS_MAX_SERIES.
const MaxMaxSeries = 10_000_000

// Validate checks the variables; errors are *envcfg.Error.
func (e Env) Validate() error {
	var errs []error
	if p := resolutionProblem(e.Resolution); p != "" {
		errs = append(errs, envcfg.Bad("METRICS_RESOLUTION", "%s", p))
	}
	if e.Grace < 0 || e.Grace > MaxGrace {
		errs = append(errs, envcfg.Bad("METRICS_GRACE", "out of range"))
	}
	if e.MaxSeries < 0 || e.MaxSeries > MaxMaxSeries {
		errs = append(errs, envcfg.Bad("METRICS_MAX_SERIES", "out of range"))
	}
	return errors.Join(errs...)
}

// Config returns the Aggregator's Config for e: METRICS_GRACE=0s means no
// grace (Config's zero Grace would mean DefaultGrace).
func (e Env) Config() Config {
	c := Config{Resolution: e.Resolution, Grace: e.Grace, MaxSeries: e.MaxSeries}
	if c.Grace == 0 {
		c.Grace = -1
	}
	return c
}
