package emitter

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/kelseyhightower/envconfig"
	metrics "github.com/rcrowley/go-metrics"
)

// Defaults and bounds of Config.
const (
	// DefaultInterval is the emission interval when Config.Interval is zero.
	DefaultInterval = 60 * time.Second
	// MinInterval is the shortest accepted Config.Interval.
	MinInterval = time.Second

	// MaxNameLen is the longest metric name Librato accepts; longer names are
	// truncated (see the package documentation).
	MaxNameLen = 255
	// MaxPrefixLen bounds Config.Prefix so that a prefixed name keeps room
	// for the metric's own name.
	MaxPrefixLen = 128
	// MaxSourceLen is the longest accepted Config.Source.
	MaxSourceLen = 255

	// DefaultMaxLineBytes is the default bound on one output line, newline
	// included: a tenth of Heroku's 10,000-byte line limit and short enough for
	// classic syslog receivers (RFC 3164's 1,024 bytes).
	DefaultMaxLineBytes = 1024
	// MinMaxLineBytes is the smallest accepted Config.MaxLineBytes; every
	// possible pair (name of MaxNameLen bytes, any float64 value) fits in a
	// line of this size.
	MinMaxLineBytes = 1024
	// MaxMaxLineBytes is the largest accepted Config.MaxLineBytes, safely
	// below Heroku's 10,000-byte line limit (longer lines are split by the
	// platform, which would cut a pair in two).
	MaxMaxLineBytes = 9000
)

// ErrConfig is wrapped by every configuration error New and FromEnv return.
var ErrConfig = errors.New("emitter: invalid configuration")

// Config configures an Emitter. The zero value of every field except
// Registry means its documented default.
type Config struct {
	// Registry holds the metrics to emit. Required.
	Registry metrics.Registry

	// Writer receives the lines. Default os.Stdout.
	Writer io.Writer

	// Interval between emissions of Run. Default DefaultInterval (60 s);
	// at least MinInterval.
	Interval time.Duration

	// Prefix is prepended to every name with a dot ("myapp" makes
	// "myapp.requests"). Only [A-Za-z0-9.:_-], at most MaxPrefixLen bytes.
	Prefix string

	// Source, when set, is added to every line as source=<Source>. Leave it
	// empty on Heroku: the log router knows the dyno (web.1) and the worker
	// uses it as the source. Only [A-Za-z0-9.:_-], at most MaxSourceLen bytes.
	Source string

	// Runtime adds Go runtime metrics (goroutines, memory, GC cycles and
	// pauses) under the name go.* to every emission.
	Runtime bool

	// StatsdAddr, when set, is a UDP address (e.g. "127.0.0.1:8125") where
	// New listens for statsd packets and feeds them into Registry.
	StatsdAddr string

	// MaxLineBytes bounds one output line, newline included. Default
	// DefaultMaxLineBytes; between MinMaxLineBytes and MaxMaxLineBytes.
	MaxLineBytes int

	// NewTicker returns the channel Run emits on and a function that stops
	// it. Default: AlignedTicker, which ticks AlignLead(d) before every
	// wall-clock multiple of d, so that each emission reaches the log router
	// inside the time bucket it describes. Tests inject a channel they
	// control.
	NewTicker func(d time.Duration) (ticks <-chan time.Time, stop func())

	// Logger receives Run's write errors. Default slog.Default().
	Logger *slog.Logger
}

// envSpec is what FromEnv reads.
type envSpec struct {
	Interval   time.Duration `envconfig:"EMITTER_INTERVAL" default:"60s" desc:"time between emissions (at least 1s); unset: METRICS_RESOLUTION when that is set"`
	Prefix     string        `envconfig:"EMITTER_PREFIX" desc:"prefix for every metric name, e.g. myapp"`
	Source     string        `envconfig:"EMITTER_SOURCE" desc:"source= for every line; empty on Heroku (the router supplies the dyno)"`
	StatsdAddr string        `envconfig:"EMITTER_STATSD_ADDR" desc:"UDP address of the statsd listener, e.g. 127.0.0.1:8125; empty: none"`
	Runtime    bool          `envconfig:"EMITTER_RUNTIME" default:"false" desc:"emit Go runtime metrics (go.*)"`
}

// FromEnv returns a Config read from the environment variables
// EMITTER_INTERVAL (a Go duration, default 60s), EMITTER_PREFIX,
// EMITTER_SOURCE, EMITTER_STATSD_ADDR and EMITTER_RUNTIME (a boolean). The
// caller sets Registry (and anything else) before calling New. An error
// names the variable and wraps ErrConfig.
//
// When the environment also holds the worker's METRICS_RESOLUTION (an app
// and its worker sharing one Heroku app's config vars), the emitter follows
// it: EMITTER_INTERVAL defaults to it, and an EMITTER_INTERVAL that is not a
// whole multiple of it is refused, because timer and histogram statistics
// would then be those of the last emission in each bucket only.
func FromEnv() (Config, error) {
	var s envSpec
	if err := envconfig.Process("", &s); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			return Config{}, fmt.Errorf("%w: %s=%q is not a valid %s: %v", ErrConfig, pe.KeyName, pe.Value, pe.TypeName, pe.Err)
		}
		return Config{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	cfg := Config{
		Interval:   s.Interval,
		Prefix:     s.Prefix,
		Source:     s.Source,
		StatsdAddr: s.StatsdAddr,
		Runtime:    s.Runtime,
	}
	if err := cfg.check("EMITTER_INTERVAL="+s.Interval.String(), "EMITTER_PREFIX", "EMITTER_SOURCE"); err != nil {
		return Config{}, err
	}
	if res, ok := workerResolution(); ok {
		if _, set := os.LookupEnv("EMITTER_INTERVAL"); !set {
			cfg.Interval = max(res, MinInterval)
		} else if s.Interval%res != 0 {
			return Config{}, fmt.Errorf("%w: EMITTER_INTERVAL=%s does not suit METRICS_RESOLUTION=%s: timer statistics "+
				"cover one emission interval and the worker keeps the last per bucket; want EMITTER_INTERVAL=%s or a "+
				"multiple of it, or leave EMITTER_INTERVAL unset to follow METRICS_RESOLUTION", ErrConfig, s.Interval, res, res)
		}
	}
	return cfg, nil
}

// workerResolution returns the worker's METRICS_RESOLUTION when it is set
// and valid (the worker reports invalid values itself).
func workerResolution() (time.Duration, bool) {
	d, err := time.ParseDuration(os.Getenv("METRICS_RESOLUTION"))
	return d, err == nil && d >= time.Second
}

// PrintEnvUsage writes the variables FromEnv reads to w, one a line: name,
// default and meaning separated by tabs (for a text/tabwriter.Writer).
func PrintEnvUsage(w io.Writer) error {
	return envconfig.Usagef("", &envSpec{}, w, envUsageFormat)
}

const envUsageFormat = "{{range .}}{{usage_key .}}\t{{usage_default .}}\t{{usage_description .}}\n{{end}}"

// validate fills in defaults and checks every field, naming the field in
// errors.
func (c *Config) validate() error {
	if c.Registry == nil {
		return fmt.Errorf("%w: Registry is nil", ErrConfig)
	}
	c.Interval = cmp.Or(c.Interval, DefaultInterval)
	if err := c.check("Interval", "Prefix", "Source"); err != nil {
		return err
	}
	c.MaxLineBytes = cmp.Or(c.MaxLineBytes, DefaultMaxLineBytes)
	if c.MaxLineBytes < MinMaxLineBytes || c.MaxLineBytes > MaxMaxLineBytes {
		return fmt.Errorf("%w: MaxLineBytes %d is outside [%d, %d]", ErrConfig, c.MaxLineBytes, MinMaxLineBytes, MaxMaxLineBytes)
	}
	if c.NewTicker == nil {
		c.NewTicker = AlignedTicker
	}
	c.Logger = cmp.Or(c.Logger, slog.Default())
	return nil
}

// check checks Interval, Prefix and Source, which New and FromEnv share,
// naming each as the caller knows it (a field, or a variable).
func (c *Config) check(interval, prefix, source string) error {
	if c.Interval < MinInterval {
		return fmt.Errorf("%w: %s: %v is shorter than the minimum %v", ErrConfig, interval, c.Interval, MinInterval)
	}
	if err := checkName(c.Prefix, MaxPrefixLen); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrConfig, prefix, err)
	}
	if err := checkSource(c.Source); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrConfig, source, err)
	}
	return nil
}

// checkName accepts the empty string or 1..max bytes of [A-Za-z0-9.:_-].
func checkName(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%d bytes is longer than %d", len(s), max)
	}
	for i := 0; i < len(s); i++ {
		if !nameByte[s[i]] {
			return fmt.Errorf("%q has %q at byte %d; only A-Z a-z 0-9 . : _ - are allowed", s, s[i], i)
		}
	}
	return nil
}

func checkSource(s string) error {
	if s == "all" {
		return errors.New(`"all" is reserved by Librato`)
	}
	return checkName(s, MaxSourceLen)
}
