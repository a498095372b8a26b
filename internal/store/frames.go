package store

import (
	"context"
	"errors"
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
		s.stats.frameErrors.Add(1)
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
		s.stats.frameErrors.Add(1)
		s.failed("frames", res.err, "store: cannot check Logplex Frame-Ids in Redis; keeping the bodies, de-duplicating locally only")
		return false, s.redact(res.err)
	}
	if res.dup {
		s.stats.framesDuplicate.Add(1)
	}
	return res.dup, nil
}

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
	more:
		for len(batch) < maxFrameBatch {
			select {
			case r := <-s.fr.ch:
				batch = append(batch, r)
			default:
				break more
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), FrameTimeout)
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.BoolCmd, len(batch))
		for i, r := range batch {
			cmds[i] = pipe.SetNX(ctx, r.key, "1", r.ttl)
		}
		_, execErr := pipe.Exec(ctx)
		cancel()
		s.count(len(batch))
		for i, r := range batch {
			// Only a reply of its own says "already taken": when the
			// pipeline failed (e.g. AUTH refused while connecting, where
			// go-redis leaves the commands without a reply or an error),
			// every check of the batch failed and its body is kept.
			set, err := cmds[i].Result()
			if err == nil && execErr != nil {
				err = execErr
			}
			r.reply <- frameRes{dup: err == nil && !set, err: err}
		}
	}
}
