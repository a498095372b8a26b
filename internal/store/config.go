package store

import (
	"cmp"
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
	"github.com/dynometrics/dynometrics/internal/envcfg"
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
	// the holder renews it every second, on a goroutine of its
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
	// Cluster says that URL names one node of a Redis Cluster (REDIS_CLUSTER):
	// the store then uses a cluster client, which finds the other nodes and
	// follows the slots as they move.
	Cluster bool

	// Balance spreads the partitions' leases over the live workers
	// (REDIS_BALANCE, true by default; see docs/shared-state.md); false: a
	// worker takes every free lease, so one worker usually flushes
	// everything. Unlike the other fields, the zero value is not the
	// default: a Config built by hand must set Balance to get it.
	Balance bool

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

// MaxPartitions bounds REDIS_PARTITIONS.
const MaxPartitions = 1024

// Env is the shared state's environment. REDIS_URL enables it; without it
// the others are not used, and not checked.
type Env struct {
	URL           string        `envconfig:"REDIS_URL" accepts:"redis://[user:password@]host:port[/db] or rediss://… (Heroku Key-Value Store sets it)" desc:"share state across workers and restarts; unset: this worker alone"`
	TLSSkipVerify bool          `envconfig:"REDIS_TLS_SKIP_VERIFY" default:"false" accepts:"true or false; true only with a rediss:// REDIS_URL" desc:"accept any certificate (Heroku Key-Value Store's is self-signed)"`
	Cluster       bool          `envconfig:"REDIS_CLUSTER" default:"false" accepts:"true or false; true: REDIS_URL names any node of a Redis Cluster (database 0)" desc:"use a Redis Cluster client: the partitions spread over the cluster's nodes"`
	Balance       bool          `envconfig:"REDIS_BALANCE" default:"true" accepts:"true or false, the same on every worker of the app" desc:"spread the partitions' flush leases evenly over the live workers (each flushes its share); false: the first worker flushes every partition (the lease round before balancing, kept as a way back)"`
	Handover      time.Duration `envconfig:"REDIS_HANDOVER" default:"2s" accepts:"a positive duration shorter than METRICS_GRACE, e.g. 2s" desc:"how often partial buckets go to Redis: what a crash (kill -9) can lose"`
	FallbackAfter time.Duration `envconfig:"REDIS_FALLBACK_AFTER" default:"2m" accepts:"a positive duration, e.g. 2m" desc:"Redis unreachable this long: send due buckets from this worker alone"`
	Partitions    int           `envconfig:"REDIS_PARTITIONS" default:"16" accepts:"1 to 1024, the same on every worker of the app" desc:"series partitions in Redis"`
	LeaseTTL      time.Duration `envconfig:"REDIS_LEASE_TTL" default:"15s" accepts:"a duration of at least 1s, e.g. 15s" desc:"how long a partition's flush lease lasts unless renewed: how long a dead worker's partitions wait"`
}

// Validate checks the variables; grace is METRICS_GRACE, which
// REDIS_HANDOVER must stay below (a partial handed over after the grace
// would be late). Errors are *envcfg.Error and never carry the password.
func (e Env) Validate(grace time.Duration) error {
	if e.URL == "" {
		if e.TLSSkipVerify {
			return envcfg.Bad("REDIS_TLS_SKIP_VERIFY", "set but REDIS_URL is not")
		}
		if e.Cluster {
			return envcfg.Bad("REDIS_CLUSTER", "set but REDIS_URL is not")
		}
		return nil
	}
	var errs []error
	if _, err := (&Config{URL: e.URL, TLSSkipVerify: e.TLSSkipVerify, Cluster: e.Cluster}).redisOptions(); err != nil {
		errs = append(errs, err)
	}
	if e.Handover <= 0 || e.Handover >= grace {
		errs = append(errs, envcfg.Bad("REDIS_HANDOVER", "not within (0, METRICS_GRACE=%s): a partial handed over after the grace would be late", grace))
	}
	if e.FallbackAfter <= 0 {
		errs = append(errs, envcfg.Bad("REDIS_FALLBACK_AFTER", "not positive"))
	}
	if e.Partitions < 1 || e.Partitions > MaxPartitions {
		errs = append(errs, envcfg.Bad("REDIS_PARTITIONS", "out of range"))
	}
	if e.LeaseTTL < time.Second {
		errs = append(errs, envcfg.Bad("REDIS_LEASE_TTL", "below 1s: leases are renewed every second"))
	}
	return errors.Join(errs...)
}

// redisOptions parses URL into go-redis options. Errors name the variable
// and never carry the password.
func (c *Config) redisOptions() (*redis.Options, error) {
	if c.URL == "" {
		return nil, envcfg.Bad("REDIS_URL", "empty")
	}
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		// url.Error quotes the whole URL, password included: say less.
		return nil, envcfg.Bad("REDIS_URL", "not a URL")
	case u.Scheme != "redis" && u.Scheme != "rediss":
		return nil, envcfg.Bad("REDIS_URL", "scheme %q is not redis or rediss", u.Scheme)
	case u.Host == "":
		return nil, envcfg.Bad("REDIS_URL", "no host")
	case c.TLSSkipVerify && u.Scheme != "rediss":
		return nil, envcfg.Bad("REDIS_TLS_SKIP_VERIFY", "true with a redis:// REDIS_URL: only rediss:// has a certificate to skip")
	}
	opt, err := redis.ParseURL(c.URL)
	if err != nil {
		msg := err.Error()
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
		return nil, envcfg.Bad("REDIS_URL", "%s", msg)
	}
	if c.Cluster && opt.DB != 0 {
		return nil, envcfg.Bad("REDIS_URL", "database %d with REDIS_CLUSTER=true: a Redis Cluster has database 0 only", opt.DB)
	}
	if c.TLSSkipVerify {
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
	// The Store retries whole steps with its own backoff; the client must
	// never send a command again by itself: one whose reply was lost may
	// have run, and a Frame-Id check (SET NX) sent again answers "seen" for
	// its own first run. go-redis reads 0 as "3 retries", -1 as none
	// (TestClientNeverRepeatsACommand). A ClusterClient keeps its redirect
	// loop, which follows MOVED and ASK and may repeat a command cut by the
	// network (docs/shared-state.md).
	opt.MaxRetries = -1
	opt.PoolSize = 8
	return opt, nil
}

// clusterOptions turns the options of one node into those of a cluster
// client seeded with it.
func clusterOptions(o *redis.Options) *redis.ClusterOptions {
	return &redis.ClusterOptions{
		Addrs:    []string{o.Addr},
		Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		MaxRetries: o.MaxRetries, PoolSize: o.PoolSize,
	}
}

func (c *Config) withDefaults() error {
	if c.Resolution < time.Second {
		return fmt.Errorf("%w: Resolution %s: want at least 1s", ErrConfig, c.Resolution)
	}
	c.Grace = max(c.Grace, 0)
	c.Partitions = cmp.Or(c.Partitions, DefaultPartitions)
	if c.Partitions < 1 || c.Partitions > MaxPartitions {
		return fmt.Errorf("%w: REDIS_PARTITIONS=%d: want 1 to 1024", ErrConfig, c.Partitions)
	}
	c.Prefix = cmp.Or(c.Prefix, DefaultPrefix)
	if strings.ContainsAny(c.Prefix, "{}: ") {
		return fmt.Errorf("%w: prefix %q must not contain braces, colons or spaces", ErrConfig, c.Prefix)
	}
	if c.Deliver == nil {
		return fmt.Errorf("%w: Deliver is nil", ErrConfig)
	}
	c.LeaseTTL = cmp.Or(max(c.LeaseTTL, 0), DefaultLeaseTTL)
	c.LeaseSettle = max(cmp.Or(c.LeaseSettle, DefaultLeaseSettle), 0) // negative: none
	c.Retention = cmp.Or(max(c.Retention, 0), DefaultRetention)
	c.MaxAge = cmp.Or(max(c.MaxAge, 0), DefaultMaxAge)
	c.TotalsTTL = cmp.Or(max(c.TotalsTTL, 0), DefaultTotalsTTL)
	c.OpTimeout = cmp.Or(max(c.OpTimeout, 0), DefaultOpTimeout)
	c.FeedLen = cmp.Or(max(c.FeedLen, 0), DefaultFeedLen*int64(c.Partitions))
	if c.ID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		c.ID = hex.EncodeToString(b[:])
	}
	c.Logger = cmp.Or(c.Logger, slog.Default())
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}
