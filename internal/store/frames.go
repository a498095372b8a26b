package store

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Frame-Id checks must not hold up the drain when Redis is slow.
const (
	// FrameTimeout bounds one Frame-Id check.
	FrameTimeout = 500 * time.Millisecond
	// FramePause is how long Frame-Id checks skip Redis after one failed:
	// meanwhile only the drain's local window de-duplicates.
	FramePause = 5 * time.Second
	// maxFrameBatch bounds the Frame-Ids sent in one pipeline.
	maxFrameBatch = 256
	// MaxFrameWindow bounds the Frame-Ids a worker remembers having taken
	// (the newest, within their TTL) to write them again after Redis lost
	// its data: about 200 KB per 1,000, so at most some 6 MB; beyond
	// 65,536 bodies in one TTL (218 a second over 5 min) the oldest are
	// forgotten, and a retry of one of those after a loss is taken twice.
	MaxFrameWindow = 1 << 16
	// frameRepairBatch bounds the Frame-Ids written again in one pipeline.
	frameRepairBatch = 1024
)

var errFramePaused = errors.New("store: Frame-Id checks paused after a Redis error")

// frameReq is one Frame-Id check waiting for the batcher.
type frameReq struct {
	key   string
	ttl   time.Duration
	reply chan frameRes
}

type frameRes struct {
	dup bool
	err error
}

// frames batches the Frame-Id checks of every drain consumer: each round
// trip carries every check that arrived while the previous one was out, so
// the checks cost Redis (and this process) one read and one write per batch
// instead of per body.
type frames struct {
	once sync.Once
	ch   chan frameReq
	stop chan struct{}

	// The Frame-Ids this worker took, oldest first: at most
	// MaxFrameWindow, for repair after a data loss.
	wmu sync.Mutex
	win []frameTaken
}

// frameTaken is one Frame-Id key this worker took, and when it expires.
type frameTaken struct {
	key   string
	until time.Time
}

// remember adds keys this worker took (each expires ttl from now), forgetting
// the expired and, beyond MaxFrameWindow, the oldest.
func (f *frames) remember(now time.Time, taken []frameTaken) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	f.win = append(f.win, taken...)
	i := 0
	for i < len(f.win) && (len(f.win)-i > MaxFrameWindow || !f.win[i].until.After(now)) {
		i++
	}
	// The dropped front is freed when append next grows the array.
	f.win = f.win[i:]
}

// remembered returns the window's unexpired Frame-Id keys.
func (f *frames) remembered(now time.Time) []frameTaken {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	return slices.DeleteFunc(slices.Clone(f.win), func(e frameTaken) bool { return !e.until.After(now) })
}

// FrameSeen records a Logplex Frame-Id of app (empty in single-app mode)
// for ttl and reports whether any worker (this one included) had recorded
// that app's Frame-Id before: the body is a retry and must be dropped. Each
// app's Frame-Ids are its own: the same id from two apps is two bodies. When Redis does not answer within
// FrameTimeout it returns false with the error (the body is kept: counting a
// retry twice is better than losing a body) and skips Redis for FramePause.
// Safe for concurrent use; concurrent calls share round trips.
func (s *Store) FrameSeen(ctx context.Context, app, id string, ttl time.Duration) (bool, error) {
	if time.Now().UnixNano() < s.frameDownUntil.Load() {
		s.stats.FrameErrors.Add(1)
		return false, errFramePaused
	}
	s.fr.once.Do(func() {
		s.fr.ch = make(chan frameReq, maxFrameBatch)
		go s.frameLoop()
	})
	r := frameReq{key: s.frameKey(app, id), ttl: ttl, reply: make(chan frameRes, 1)}
	t := time.NewTimer(FrameTimeout)
	defer t.Stop()
	var res frameRes
	select {
	case s.fr.ch <- r:
		select {
		case res = <-r.reply:
		case <-t.C:
			res.err = context.DeadlineExceeded
		case <-ctx.Done():
			res.err = ctx.Err()
		}
	case <-t.C:
		res.err = context.DeadlineExceeded
	case <-ctx.Done():
		res.err = ctx.Err()
	}
	if res.err != nil {
		s.frameDownUntil.Store(time.Now().Add(FramePause).UnixNano())
		s.stats.FrameErrors.Add(1)
		s.failed("frames", res.err, "store: cannot check Logplex Frame-Ids in Redis; keeping the bodies, de-duplicating locally only")
		return false, s.redact(res.err)
	}
	if res.dup {
		s.stats.FramesDuplicate.Add(1)
	}
	return res.dup, nil
}

// frameLinger is how long frameLoop waits for more checks to fill a
// pipeline.
const frameLinger = 500 * time.Microsecond

// frameLoop sends the waiting checks, one pipeline at a time, until Close.
func (s *Store) frameLoop() {
	batch := make([]frameReq, 0, maxFrameBatch)
	for {
		select {
		case <-s.fr.stop:
			return
		case r := <-s.fr.ch:
			batch = append(batch[:0], r)
		}
		// Gather what is waiting, and what comes within frameLinger: under
		// load the drain queues bodies faster than Redis answers one
		// round trip, and each round trip costs the worker two system
		// calls and a wake-up, so fewer, fuller pipelines cost less CPU
		// per body (the check started when the body was queued, so the
		// linger overlaps its wait in the queue).
		linger := time.NewTimer(frameLinger)
	more:
		for len(batch) < maxFrameBatch {
			select {
			case r := <-s.fr.ch:
				batch = append(batch, r)
			case <-linger.C:
				break more
			}
		}
		linger.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), FrameTimeout)
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.BoolCmd, len(batch))
		for i, r := range batch {
			// The value is this worker's id: after a data loss, the repair
			// tells a key another worker took again from its own.
			cmds[i] = pipe.SetNX(ctx, r.key, s.cfg.ID, r.ttl)
		}
		_, execErr := pipe.Exec(ctx)
		cancel()
		s.count(len(batch))
		now := time.Now()
		var taken []frameTaken
		for i, r := range batch {
			if set, err := cmds[i].Result(); err == nil && execErr == nil && set {
				taken = append(taken, frameTaken{r.key, now.Add(r.ttl)})
			}
		}
		s.fr.remember(now, taken)
		for i, r := range batch {
			// Only a reply of its own says "already taken": when the
			// pipeline failed (e.g. AUTH refused while connecting, where
			// go-redis leaves the commands without a reply or an error),
			// every check of the batch failed and its body is kept.
			set, err := cmds[i].Result()
			err = cmp.Or(err, execErr)
			r.reply <- frameRes{dup: err == nil && !set, err: err}
		}
	}
}

// repairFrames writes the Frame-Ids this worker took within their TTL to
// Redis again after it lost its data (checkMarker), each with what is left
// of its TTL, so that a Logplex retry of a body this worker took before the
// loss is still recognised by every worker. A key another worker took
// meanwhile (a retry that reached it between the loss and this repair) is
// a body taken twice: counted in Stats.FramesTakenTwice and logged; it
// cannot be undone. Called with hmu held.
func (s *Store) repairFrames(ctx context.Context) error {
	now := time.Now()
	var repaired, twice int
	for batch := range slices.Chunk(s.fr.remembered(now), frameRepairBatch) {
		cmds, err := s.runPipe(ctx, func(pipe redis.Pipeliner) {
			for _, e := range batch {
				ms := max(e.until.Sub(now).Milliseconds(), 1)
				evalsha(ctx, pipe, frameRepairScript, []string{e.key}, s.cfg.ID, ms)
			}
		})
		if len(cmds) != len(batch) {
			return err
		}
		for _, c := range cmds {
			n, err := c.(*redis.Cmd).Int64()
			if err != nil {
				return err // what this batch wrote is found as this worker's at the retry
			}
			switch n {
			case 1:
				repaired++
				s.stats.FramesRepaired.Add(1)
			case 2:
				twice++
				s.stats.FramesTakenTwice.Add(1)
			}
		}
	}
	if twice > 0 {
		s.log.Error("store: after Redis lost its data, other workers took again drain bodies this worker had taken (Logplex retries before the repair): counted twice",
			"bodies", twice, "frame_ids_rewritten", repaired)
	} else if repaired > 0 {
		s.log.Info("store: Frame-Ids written again after Redis lost its data", "frame_ids_rewritten", repaired)
	}
	return nil
}

// frameRepairScript writes a Frame-Id key again after a data loss.
//
//	KEYS: the Frame-Id key; ARGV: this worker's id, milliseconds left
//
// Returns 1 when it wrote the key, 0 when this worker had taken it again
// already, 2 when another worker has it (a body taken twice).
var frameRepairScript = newScript(`
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == ARGV[1] then return 0 end
return 2
`)
