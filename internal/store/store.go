package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/throttle"
	"github.com/redis/go-redis/v9"
)

// LogEvery is the shortest interval between two log lines about the same
// kind of trouble (Redis unreachable, a late partial, …); the counts go to
// Stats every time.
const LogEvery = time.Minute

// Stats are cumulative counters since Open (Leases and Unsent* are current
// values), for self-metrics.
type Stats struct {
	HandoverBlobs    uint64 `metric:"handover_blobs"`         // partial blobs stored in Redis
	HandoverStates   uint64 `metric:"handover_series"`        // series states in those blobs
	HandoverErrors   uint64 `metric:"handover_errors"`        // hand-overs that failed (Redis down or slow); the partials are kept and retried
	LateStates       uint64 `metric:"late_series,drop"`       // partial states refused: their bucket was already flushed (by any worker)
	LateMeasurements uint64 `metric:"late_measurements,drop"` // measurements in those states
	UnsentStates     int    `metric:"unsent_series,gauge"`    // partial states waiting for Redis now
	BucketsFlushed   uint64 `metric:"buckets_flushed"`        // (partition, bucket) pairs merged and handed to the outlets (resends included)
	BucketsResent    uint64 `metric:"buckets_resent"`         // of those, resends: an outlet failed, or another worker had begun it
	BucketsDone      uint64 `metric:"buckets_done"`           // pairs every outlet settled, whose partials were deleted
	BucketsAbandoned uint64 `metric:"buckets_abandoned,drop"` // pairs older than MaxAge no outlet could take, deleted (their series are lost, and logged)
	OutletRefused    uint64 `metric:"outlet_refused"`         // bucket deliveries an outlet refused for good (not resent); not a drop of its own: the same refusal is counted once, in worker.outlet.<name>.batches_dropped.refused
	SeriesConflicts  uint64 `metric:"series_conflicts,drop"`  // partial states dropped at merge: same series, different kind or unit
	BadBlobs         uint64 `metric:"bad_blobs,drop"`         // partials or feed entries that did not decode (skipped)
	FlushErrors      uint64 `metric:"flush_errors"`           // flush steps that failed on a Redis error (retried)
	Leases           int    `metric:"leases,gauge"`           // partitions this worker flushes now
	LiveWorkers      int    `metric:"live_workers,gauge"`     // workers whose heartbeat this worker last read (its fair share is Partitions / LiveWorkers)
	LeasesReleased   uint64 `metric:"leases_released"`        // leases given up to balance the partitions over the live workers (after their deliveries settled)
	FramesDuplicate  uint64 `metric:"frame_duplicates,drop"`  // drain bodies whose Frame-Id another worker (or this one) had taken
	FrameErrors      uint64 `metric:"frame_errors"`           // Frame-Id checks that could not reach Redis (the body was kept)
	FramesRepaired   uint64 `metric:"frames_repaired"`        // Frame-Ids this worker had taken, written to Redis again after it lost its data
	FramesTakenTwice uint64 `metric:"frames_taken_twice"`     // of those, bodies another worker took again between the loss and the repair (their lines counted twice)
	FeedBuckets      uint64 `metric:"feed_buckets"`           // merged buckets the viewers were given from the feed
	FeedErrors       uint64 `metric:"feed_errors"`            // failed reads of the feed (retried from the last entry read: nothing missed)
	FeedDropped      uint64 `metric:"feed_dropped,drop"`      // merged buckets that could not be appended to the feed: the viewers miss them
	FeedTrimmed      uint64 `metric:"feed_trimmed"`           // feed entries removed by its cap (DefaultFeedLen): a viewer that had not read them misses them
	FallbackBuckets  uint64 `metric:"fallback_buckets"`       // buckets taken back for local delivery while Redis was down (TakeUnsent)
	RedisCommands    uint64 `metric:"commands"`               // commands sent to Redis (pipelined ones each count)
	RedisRoundTrips  uint64 `metric:"-"`                      // round trips to Redis
	HandoverBytes    uint64 `metric:"-"`                      // bytes of the stored partial blobs
	Fenced           uint64 `metric:"fenced"`                 // flush-side writes (close, totals, verdicts, clean-up) refused: the lease had moved
	LeasesLost       uint64 `metric:"leases_lost"`            // leases this worker held and found lapsed or taken by another worker
	Withdrawn        uint64 `metric:"withdrawn"`              // outlet deliveries withdrawn unsent because the lease moved (the new holder sends them)
	Resends          uint64 `metric:"resends"`                // outlet deliveries resent whose previous outcome (by another holder) was unknown: identical values
	DataLosses       uint64 `metric:"data_losses"`            // times this worker found that Redis had lost its data (the marker changed)
	DataLossSeries   uint64 `metric:"data_loss_series,drop"`  // series of this worker's partials of buckets already due at a data loss: not rewritten, possibly lost
	RepairedSeries   uint64 `metric:"repaired_series"`        // series of open buckets written again after a data loss
	FallbackExcluded uint64 `metric:"fallback_excluded,drop"` // series states left out of a merged bucket because a worker's fallback had sent that series (other workers' parts of it are lost)
	FallbackLate     uint64 `metric:"fallback_late"`          // (partition, bucket)s a fallback sent that Redis had already closed: those series may have gone out twice
	TotalsPruned     uint64 `metric:"totals_pruned"`          // running totals of series idle longer than TotalsTTL, deleted (they restart from zero if seen again)
	FlushWaits       uint64 `metric:"flush_waits"`            // flush rounds that held due buckets back: for a live worker whose partials Redis refused (OOM), or for METRICS_GRACE after Redis came back or lost its data (the others' hand-overs land first)

	// Errors counts the failed Redis steps (Frame-Id checks, hand-overs,
	// lease rounds, flush steps, feed reads) by reason (ReasonAuth, …).
	// Every one of them is a "Redis unavailable": data kept, step retried.
	Errors map[string]uint64 `metric:"-"` // published as worker.redis.errors.<reason> (worker/store.go)

	// FlushTime is the wall time this worker spent flushing (partition,
	// bucket)s: close, merge, totals, feed, and the hand-off to the
	// outlets (Config.Deliver: the worker's outlets encode the bucket into
	// their queues there; the sending runs on their own goroutines).
	// FlushMillis is it in whole milliseconds, for the emitter: its change
	// per interval is the flush time of the flushes that ended in it
	// (internal/tools/capacity reads it per bucket).
	FlushTime   time.Duration `metric:"-"` // published as FlushMillis
	FlushMillis uint64        `metric:"flush_ms"`
}

// Store is one worker's connection to the shared state. Safe for concurrent
// use.
type Store struct {
	cfg Config
	rdb redis.UniversalClient // *redis.Client, or *redis.ClusterClient with Config.Cluster
	pw  string                // the URL's password, removed from errors (redact)
	log *slog.Logger
	seq atomic.Uint64 // blob ids

	// Hand-over state, under hmu.
	hmu       sync.Mutex
	cum       map[pkey]*partial // this worker's partial of each open (partition, bucket)
	fellBack  map[pkey]fallback // sent by this worker's fallback, to record in Redis
	downSince time.Time         // zero while Redis answers
	marker    string            // the data marker last read (checkMarker)
	repairFr  bool              // Redis lost its data: write the Frame-Ids again (repairFrames)

	// Flush state, under mu.
	mu      sync.Mutex
	held    map[int]*lease // partitions leased
	lastTok []int64        // the last token held per partition, kept when a lease lapses
	flights map[pkey]*flight
	live    int        // live workers last read (0: not yet)
	rank    int        // this worker's rank among them, by id
	rmu     sync.Mutex // one renew or balancing release at a time
	retry   map[pkey]retryState
	settled []verdict
	warns   *throttle.Logger // at most once per LogEvery per kind

	pmu       sync.Mutex    // one processSettled at a time
	kick      chan struct{} // a flight settled: record it now
	renewing  atomic.Bool   // Run's goroutine renews the leases
	renewDown atomic.Bool   // the last lease round failed
	holdUntil atomic.Int64  // unix nanos (wall clock): no flush before (holdFlushes)

	stats          counters
	frameDownUntil atomic.Int64 // unix nanos: Frame-Id checks skip Redis until then
	fr             frames
	closeOnce      sync.Once
}

// pkey is one partition's part of one bucket.
type pkey struct {
	p     int
	start int64 // unix seconds
}

// partial is everything this worker aggregated for one (partition, bucket)
// so far. It is written whole, under its own field id, at every hand-over
// that has something new: an overwrite with a superset of what the field
// held, so that a write whose answer was lost is simply written again, and
// Redis keeps one copy per series and worker however often hand-overs
// happen.
type partial struct {
	id     string // field in the bucket's parts hash: worker id, sequence
	states map[skey]*aggregate.State
	enc    map[skey][]byte // each state's encoding, redone only for changed series
	dirty  map[skey]int64  // series changed since the last acknowledged write: measurements added
	clean  time.Time       // when the last write was acknowledged with nothing left dirty
}

// Open connects to cfg.URL (lazily: a Redis that is down now is retried)
// and returns a Store. Errors name the variable at fault and never carry the
// URL's password.
func Open(cfg Config) (*Store, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	opt, err := cfg.redisOptions()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	var rdb redis.UniversalClient = redis.NewClient(opt)
	if cfg.Cluster {
		rdb = redis.NewClusterClient(clusterOptions(opt))
	}
	return &Store{
		cfg:      cfg,
		rdb:      rdb,
		pw:       opt.Password,
		log:      cfg.Logger.With("component", "store"),
		cum:      make(map[pkey]*partial),
		fellBack: make(map[pkey]fallback),
		held:     make(map[int]*lease),
		lastTok:  make([]int64, cfg.Partitions),
		kick:     make(chan struct{}, 1),
		flights:  make(map[pkey]*flight),
		retry:    make(map[pkey]retryState),
		warns:    throttle.New(cfg.Logger.With("component", "store"), LogEvery, cfg.Now),
		fr:       frames{stop: make(chan struct{})},
	}, nil
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	s.count(1)
	return s.redact(s.rdb.Ping(ctx).Err())
}

// Close stops the Frame-Id batcher and closes the connections. Call Release
// first.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.fr.stop)
		err = s.rdb.Close()
	})
	return err
}

// counters are the cumulative fields of Stats, under the same names:
// Stats copies each exported one by name.
type counters struct {
	HandoverBlobs, HandoverStates, HandoverErrors, LateStates, LateMeasurements   atomic.Uint64
	BucketsFlushed, BucketsResent, BucketsDone, BucketsAbandoned, OutletRefused   atomic.Uint64
	SeriesConflicts, BadBlobs, FlushErrors, FramesDuplicate, FrameErrors          atomic.Uint64
	FramesRepaired, FramesTakenTwice, FeedBuckets, FeedErrors, FallbackBuckets    atomic.Uint64
	RedisCommands, RedisRoundTrips, HandoverBytes, Fenced, LeasesLost, Withdrawn  atomic.Uint64
	RepairedSeries, FallbackExcluded, FallbackLate, TotalsPruned, FlushWaits      atomic.Uint64
	Resends, DataLosses, DataLossSeries, FeedTrimmed, FeedDropped, LeasesReleased atomic.Uint64

	flushNanos atomic.Uint64 // Stats.FlushTime
	errors     [len(reasons)]atomic.Uint64
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	st := Stats{FlushTime: time.Duration(s.stats.flushNanos.Load()), Errors: make(map[string]uint64, len(reasons))}
	cv, sv := reflect.ValueOf(&s.stats).Elem(), reflect.ValueOf(&st).Elem()
	for i := range cv.NumField() {
		if f := cv.Type().Field(i); f.IsExported() {
			sv.FieldByName(f.Name).SetUint(cv.Field(i).Addr().Interface().(*atomic.Uint64).Load())
		}
	}
	for i, r := range reasons {
		st.Errors[r] = s.stats.errors[i].Load()
	}
	st.FlushMillis = uint64(st.FlushTime / time.Millisecond)
	s.hmu.Lock()
	for _, c := range s.cum {
		st.UnsentStates += len(c.dirty)
	}
	s.hmu.Unlock()
	wall := time.Now()
	s.mu.Lock()
	st.LiveWorkers = s.live
	for _, l := range s.held {
		if wall.Before(l.until) {
			st.Leases++
		}
	}
	s.mu.Unlock()
	return st
}

// count records one round trip of n commands.
func (s *Store) count(n int) {
	s.stats.RedisRoundTrips.Add(1)
	s.stats.RedisCommands.Add(uint64(n))
}

// warn logs at most once per LogEvery per kind; callable with s.mu held
// (the throttled logger has a lock of its own).
func (s *Store) warn(kind, msg string, args ...any) {
	s.warns.Log(slog.LevelWarn, kind, msg, args...)
}

// redact removes the URL's password from an error, should a client error
// ever quote it.
func (s *Store) redact(err error) error {
	if err == nil {
		return nil
	}
	if s.pw != "" && strings.Contains(err.Error(), s.pw) {
		return errors.New(strings.ReplaceAll(err.Error(), s.pw, "xxxxx"))
	}
	return err
}

// evalsha queues script on pipe by its hash; loadScripts must have run on
// this server (runPipe does it on NOSCRIPT).
func evalsha(ctx context.Context, pipe redis.Pipeliner, sc *script, keys []string, args ...any) *redis.Cmd {
	return pipe.EvalSha(ctx, sc.Hash(), keys, args...)
}

// eval runs one script in a round trip of its own (runPipe); the command
// carries runPipe's error, if any.
func (s *Store) eval(ctx context.Context, sc *script, keys []string, args ...any) *redis.Cmd {
	var cmd *redis.Cmd
	if _, err := s.runPipe(ctx, func(pipe redis.Pipeliner) { cmd = evalsha(ctx, pipe, sc, keys, args...) }); err != nil {
		cmd.SetErr(err)
	}
	return cmd
}

var allScripts = []*script{appendScript, fallbackScript, markerScript, dueScript, closeScript, totalsScript, leaseScript, releaseScript, verdictScript, liveScript, frameRepairScript}

// runPipe runs fill's commands in one round trip with OpTimeout. When Redis
// answers NOSCRIPT (it restarted, or is new), it loads the scripts and runs
// the pipeline once more. The returned error is the first command error or
// the connection's; callers look at each command's own error, which is set
// on every command when the pipeline failed.
func (s *Store) runPipe(ctx context.Context, fill func(pipe redis.Pipeliner)) ([]redis.Cmder, error) {
	for attempt := 0; ; attempt++ {
		octx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
		pipe := s.rdb.Pipeline()
		fill(pipe)
		n := pipe.Len()
		if n == 0 {
			cancel()
			return nil, nil
		}
		cmds, err := pipe.Exec(octx)
		cancel()
		s.count(n)
		if err != nil && attempt == 0 && slices.ContainsFunc(cmds, func(c redis.Cmder) bool {
			return c.Err() != nil && strings.HasPrefix(c.Err().Error(), "NOSCRIPT")
		}) {
			if lerr := s.loadScripts(ctx); lerr != nil {
				return cmds, lerr
			}
			continue
		}
		if err != nil && !slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return c.Err() != nil }) {
			// The pipeline failed before any command got a reply (AUTH
			// refused while connecting leaves go-redis' commands without a
			// reply or an error): no empty reply may pass for a verdict,
			// so every command carries the pipeline's error. When some
			// command has an error of its own, the others got their
			// replies, and one damaged key fails only its own step.
			for _, c := range cmds {
				c.SetErr(err)
			}
		}
		return cmds, s.redact(err)
	}
}

func (s *Store) loadScripts(ctx context.Context) error {
	var err error
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		// A pipeline would load them on one node: SCRIPT LOAD on every
		// master (a node that joins or restarts answers NOSCRIPT, and
		// runPipe loads them again).
		octx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
		defer cancel()
		for _, sc := range allScripts {
			s.count(1)
			if err = cc.ScriptLoad(octx, sc.src).Err(); err != nil {
				break
			}
		}
	} else {
		_, err = s.runPipe(ctx, func(pipe redis.Pipeliner) {
			for _, sc := range allScripts {
				pipe.ScriptLoad(ctx, sc.src)
			}
		})
	}
	if err != nil {
		return fmt.Errorf("store: load scripts: %w", s.redact(err))
	}
	return nil
}
