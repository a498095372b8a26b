package store

import (
	"context"
	"time"
)

// Frame-Id checks must not hold up the drain when Redis is slow.
const (
	// FrameTimeout bounds one Frame-Id check.
	FrameTimeout = 500 * time.Millisecond
	// FramePause is how long Frame-Id checks skip Redis after one failed:
	// meanwhile only the drain's local window de-duplicates.
	FramePause = 5 * time.Second
)

// FrameSeen records a Logplex Frame-Id for ttl and reports whether any
// worker of the app (this one included) had recorded it before: the body is
// a retry and must be dropped. When Redis does not answer within
// FrameTimeout it returns false with the error (the body is kept: counting a
// retry twice is better than losing a body) and skips Redis for FramePause.
func (s *Store) FrameSeen(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	if time.Now().UnixNano() < s.frameDownUntil.Load() {
		s.stats.frameErrors.Add(1)
		return false, errFramePaused
	}
	ctx, cancel := context.WithTimeout(ctx, FrameTimeout)
	defer cancel()
	s.count(1)
	set, err := s.rdb.SetNX(ctx, s.frameKey(id), "1", ttl).Result()
	if err != nil {
		s.frameDownUntil.Store(time.Now().Add(FramePause).UnixNano())
		s.stats.frameErrors.Add(1)
		s.warn("frames", "store: cannot check Logplex Frame-Ids in Redis; de-duplicating locally only", "err", s.redact(err))
		return false, s.redact(err)
	}
	if !set {
		s.stats.framesDuplicate.Add(1)
	}
	return !set, nil
}

type frameErr string

func (e frameErr) Error() string { return string(e) }

const errFramePaused = frameErr("store: Frame-Id checks paused after a Redis error")
