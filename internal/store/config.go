package store

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/redis/go-redis/v9"
)

// Defaults for the zero values of Config.
const (
	// DefaultPartitions is how many partitions the series are hashed into.
	// Each partition is flushed by one worker at a time and its keys share
	// one Redis Cluster slot.
	DefaultPartitions = 16
	// DefaultPrefix starts every key.
	DefaultPrefix = "dm"
	// DefaultLeaseTTL is how long a partition's lease lasts unless renewed;
	// the holder renews it every second (LeaseRenew), on a goroutine of its
	// own, and stops delivering the partition 9/10 of it after its last
	// successful renewal. A worker that dies without releasing it (kill -9)
	// delays that partition's buckets by at most this.
	DefaultLeaseTTL = 15 * time.Second
	// DefaultLeaseSettle is how long a worker that takes a partition over
	// waits before flushing it.
	DefaultLeaseSettle = 2 * time.Second
	// DefaultRetention is how long a bucket's keys live in Redis at most: the
	// closed mark (which turns late partials away), the recorded totals, and
	// partials nobody could deliver.
	DefaultRetention = 3 * time.Hour
	// DefaultMaxAge is how long after its end a bucket is still delivered;
	// older ones are given up (counted): Librato refuses measure times older
	// than about two hours.
	DefaultMaxAge = 2 * time.Hour
	// DefaultFeedLen caps the stream of merged buckets the viewers read, in
	// entries per partition: the readers follow it live, so a few buckets'
	// worth is enough, and each entry holds a partition's whole bucket.
	DefaultFeedLen = 4
	// DefaultTotalsTTL is how long a series' running totals are kept after
	// its last bucket: an idle series' totals are pruned (swept 100 fields
	// per flushed bucket of its partition, counted in Stats.TotalsPruned),
	// and a series seen again later restarts from zero (a counter reset).
	// The whole hash expires this long after its partition's last flush.
	DefaultTotalsTTL = 24 * time.Hour
	// DefaultOpTimeout bounds one round trip (a pipeline) to Redis.
	DefaultOpTimeout = 3 * time.Second
)

// ErrConfig is wrapped by every error Open returns for a bad Config.
var ErrConfig = errors.New("store: invalid configuration")

// Config configures a Store. Zero values mean the documented defaults.
type Config struct {
	// URL is REDIS_URL: redis://[user:password@]host:port[/db] or rediss://
	// for TLS. Required.
	URL string
	// TLSSkipVerify accepts any server certificate on rediss:// (Heroku
	// Key-Value Store presents a self-signed one): REDIS_TLS_SKIP_VERIFY.
	TLSSkipVerify bool

	Partitions int    // DefaultPartitions; every worker of an app must use the same number
	Prefix     string // DefaultPrefix; every worker of an app must use the same prefix

	Resolution time.Duration // bucket width (METRICS_RESOLUTION); required
	Grace      time.Duration // wait after a bucket's end before flushing it (METRICS_GRACE)

	// Outlets are the names of the outlets every bucket goes to (as they
	// report to aggregate.Bucket.Done); a bucket's partials are deleted once
	// each of them has accepted it.
	Outlets []string
	// Deliver hands a merged bucket to every outlet for which skip returns
	// false. b.Done is set; Deliver must not block for long.
	Deliver func(b *aggregate.Bucket, skip func(outlet string) bool)

	LeaseTTL    time.Duration // DefaultLeaseTTL (REDIS_LEASE_TTL)
	LeaseRenew  time.Duration // how often Run renews the leases; default LeaseTTL/5, at most 1s
	LeaseSettle time.Duration // DefaultLeaseSettle; negative: none
	Retention   time.Duration // DefaultRetention
	MaxAge      time.Duration // DefaultMaxAge
	FeedLen     int64         // DefaultFeedLen
	TotalsTTL   time.Duration // DefaultTotalsTTL
	OpTimeout   time.Duration // DefaultOpTimeout

	ID     string           // this worker's id in leases and blob ids; default: random
	Logger *slog.Logger     // default slog.Default()
	Now    func() time.Time // default time.Now
}

// options parses URL into go-redis options. Errors name REDIS_URL and never
// carry its password.
func (c *Config) options() (*redis.Options, error) {
	if c.URL == "" {
		return nil, fmt.Errorf("%w: REDIS_URL is empty", ErrConfig)
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		// url.Error quotes the whole URL, password included: say less.
		return nil, fmt.Errorf("%w: REDIS_URL is not a URL (want redis://[user:password@]host:port[/db] or rediss://…)", ErrConfig)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("%w: REDIS_URL scheme %q: want redis:// or rediss://", ErrConfig, u.Scheme)
	}
	opt, err := redis.ParseURL(c.URL)
	if err != nil {
		msg := err.Error()
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
		return nil, fmt.Errorf("%w: REDIS_URL: %s", ErrConfig, msg)
	}
	if c.TLSSkipVerify {
		if opt.TLSConfig == nil {
			return nil, fmt.Errorf("%w: REDIS_TLS_SKIP_VERIFY=true needs a rediss:// REDIS_URL", ErrConfig)
		}
		// Heroku Key-Value Store's certificate is self-signed: the user
		// asked, explicitly, to accept it.
		opt.TLSConfig.InsecureSkipVerify = true //nolint:gosec // explicit, documented opt-in
	}
	if opt.TLSConfig != nil {
		opt.TLSConfig.MinVersion = tls.VersionTLS12
	}
	timeout := c.OpTimeout
	opt.DialTimeout = timeout
	opt.ReadTimeout = timeout
	opt.WriteTimeout = timeout
	opt.MaxRetries = 0 // the Store retries whole steps with backoff itself
	opt.PoolSize = 8
	return opt, nil
}

func (c *Config) withDefaults() error {
	if c.Resolution < time.Second {
		return fmt.Errorf("%w: Resolution %s: want at least 1s", ErrConfig, c.Resolution)
	}
	if c.Grace < 0 {
		c.Grace = 0
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.Partitions < 1 || c.Partitions > 1024 {
		return fmt.Errorf("%w: REDIS_PARTITIONS=%d: want 1 to 1024", ErrConfig, c.Partitions)
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(c.Prefix, "{}: ") {
		return fmt.Errorf("%w: prefix %q must not contain braces, colons or spaces", ErrConfig, c.Prefix)
	}
	if c.Deliver == nil {
		return fmt.Errorf("%w: Deliver is nil", ErrConfig)
	}
	setDur(&c.LeaseTTL, DefaultLeaseTTL)
	setDur(&c.LeaseRenew, min(time.Second, c.LeaseTTL/5))
	switch {
	case c.LeaseSettle == 0:
		c.LeaseSettle = DefaultLeaseSettle
	case c.LeaseSettle < 0:
		c.LeaseSettle = 0
	}
	setDur(&c.Retention, DefaultRetention)
	setDur(&c.MaxAge, DefaultMaxAge)
	setDur(&c.TotalsTTL, DefaultTotalsTTL)
	setDur(&c.OpTimeout, DefaultOpTimeout)
	if c.FeedLen <= 0 {
		c.FeedLen = DefaultFeedLen * int64(c.Partitions)
	}
	if c.ID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		c.ID = hex.EncodeToString(b[:])
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

func setDur(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}
