package store

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/metric"
	"github.com/redis/go-redis/v9"
)

// FeedWindow is how long Feed waits, after the first partition of a bucket
// arrives, for the others before it shows the viewers the whole bucket: the
// partitions of one bucket are flushed within a flush round of each other.
const FeedWindow = 2 * time.Second

// publish appends a merged (partition, bucket) to the feed, once: a resend
// of the same bucket finds the fed mark and appends nothing.
func (s *Store) publish(ctx context.Context, k pkey, states []*aggregate.State) error {
	cmds, err := s.runPipe(ctx, func(pipe redis.Pipeliner) { pipe.SetNX(ctx, s.keys(k.p).fed(k.start), "1", s.cfg.Retention) })
	if err != nil || !cmds[0].(*redis.BoolCmd).Val() {
		return err
	}
	data, err := encodeBucket(k.start, int64(s.cfg.Resolution/time.Second), states)
	if err != nil {
		return err
	}
	// XTRIM apart from XADD, to learn how many entries the cap removed:
	// a viewer that had not read them yet misses them (Stats.FeedTrimmed).
	cmds, err = s.runPipe(ctx, func(pipe redis.Pipeliner) {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: s.feedKey(), Values: []any{"b", data}})
		pipe.XTrimMaxLen(ctx, s.feedKey(), s.cfg.FeedLen) // exact: a few dozen entries
	})
	if err != nil {
		return err
	}
	s.stats.FeedTrimmed.Add(uint64(cmds[1].(*redis.IntCmd).Val()))
	return nil
}

// Feed calls view with every merged bucket any worker of the app flushes
// from now on, whole (its partitions put together, see FeedWindow), oldest
// first, until ctx ends. view is called from Feed's goroutine only.
func (s *Store) Feed(ctx context.Context, view func(b *aggregate.Bucket)) {
	last := "$"
	type asm struct {
		first  time.Time
		period int64
		states []*aggregate.State
	}
	pending := make(map[int64]*asm)
	emit := func(force bool) {
		now := time.Now()
		for _, start := range slices.Sorted(maps.Keys(pending)) {
			a := pending[start]
			if !force && now.Sub(a.first) < FeedWindow {
				continue
			}
			delete(pending, start)
			slices.SortFunc(a.states, aggregate.CompareStates)
			s.stats.FeedBuckets.Add(1)
			view(bucketOf(time.Unix(start, 0).UTC(), time.Duration(a.period)*time.Second, a.states))
		}
	}
	defer emit(true)
	for ctx.Err() == nil {
		s.count(1)
		res, err := s.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{s.feedKey(), last}, Count: 256, Block: FeedWindow / 2}).Result()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			s.stats.FeedErrors.Add(1)
			s.failed("feed-read", err, "store: cannot read the feed of merged buckets; retrying")
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		default:
			for _, str := range res {
				for _, m := range str.Messages {
					last = m.ID
					data, _ := m.Values["b"].(string)
					start, period, states, err := decodeBucket([]byte(data))
					if err != nil {
						s.stats.BadBlobs.Add(1)
						continue
					}
					a := pending[start]
					if a == nil {
						a = &asm{first: time.Now(), period: period}
						pending[start] = a
					}
					a.states = append(a.states, states...)
				}
			}
		}
		emit(false)
	}
}

// bucketOf turns merged states into a bucket's series (a measure keeps its
// state, for percentiles).
func bucketOf(start time.Time, period time.Duration, states []*aggregate.State) *aggregate.Bucket {
	b := &aggregate.Bucket{Start: start, Period: period, Series: make([]aggregate.Series, len(states))}
	for i, st := range states {
		b.Series[i] = st.Series()
		if st.Kind == metric.Measure {
			b.Series[i].State = st
		}
	}
	return b
}
