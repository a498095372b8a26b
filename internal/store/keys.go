package store

import (
	"hash/fnv"
	"strconv"
)

// keys names the Redis keys of one partition. Every key of a partition
// carries the same {hash tag}, so a Redis Cluster keeps them in one slot and
// a Lua script may touch all of them; different partitions spread over the
// cluster. See docs/shared-state.md.
type keys struct{ tag string } // "dm:{p3}"

func (s *Store) keys(p int) keys {
	return keys{tag: s.cfg.Prefix + ":{p" + strconv.Itoa(p) + "}"}
}

func (k keys) lease() string   { return k.tag + ":lease" }   // string: "token id" of the holder
func (k keys) epoch() string   { return k.tag + ":epoch" }   // string: the last lease token handed out
func (k keys) pending() string { return k.tag + ":pending" } // zset: bucket starts with partials, scored by start
func (k keys) totals() string  { return k.tag + ":totals" }  // hash: series → "start sum count"
func (k keys) prune() string   { return k.tag + ":prune" }   // string: HSCAN cursor of the totals sweep
func (k keys) upto() string    { return k.tag + ":upto" }    // string: every bucket starting at or before it is closed

func (k keys) parts(start int64) string  { return k.tag + ":parts:" + strconv.FormatInt(start, 10) }  // hash: blob id → partial states
func (k keys) closed(start int64) string { return k.tag + ":closed:" + strconv.FormatInt(start, 10) } // string: the bucket is closed
func (k keys) tot(start int64) string    { return k.tag + ":tot:" + strconv.FormatInt(start, 10) }    // string: the bucket's totals, recorded
func (k keys) done(start int64) string   { return k.tag + ":done:" + strconv.FormatInt(start, 10) }   // set: outlets that accepted the bucket
func (k keys) fed(start int64) string    { return k.tag + ":fed:" + strconv.FormatInt(start, 10) }    // string: the bucket went to the feed
func (k keys) sent(start int64) string   { return k.tag + ":sent:" + strconv.FormatInt(start, 10) }   // string: token of the holder that handed it to the outlets
func (k keys) fb(start int64) string     { return k.tag + ":fb:" + strconv.FormatInt(start, 10) }     // hash: worker field → series its fallback sent

// feedKey is the stream of merged buckets every worker's viewers read. One
// key for the app (not per partition): a reader follows one stream.
func (s *Store) feedKey() string { return s.cfg.Prefix + ":feed" }

// markerKey holds a random value set once: when it changes, Redis lost its
// data. One key for the app, read with one command of its own.
func (s *Store) markerKey() string { return s.cfg.Prefix + ":marker" }

// workersKey is the set of worker ids that handed something over; a
// worker's alive and clean marks say whether it may hold partials Redis
// refused (see Store.owing). All in one slot.
func (s *Store) workersKey() string        { return s.cfg.Prefix + ":{w}:ids" }
func (s *Store) aliveKey(id string) string { return s.cfg.Prefix + ":{w}:" + id + ":alive" }
func (s *Store) cleanKey(id string) string { return s.cfg.Prefix + ":{w}:" + id + ":clean" }

// liveKey is the zset of live workers (member: worker id, score: the
// Redis-clock millisecond its heartbeat expires); every worker reads it to
// compute its fair share of the partitions. In the {w} slot too.
func (s *Store) liveKey() string { return s.cfg.Prefix + ":{w}:live" }

// frameKey remembers one Logplex Frame-Id.
func (s *Store) frameKey(id string) string { return s.cfg.Prefix + ":frame:" + id }

// partition returns the partition of a series: FNV-1a of name, NUL,
// source, so that every worker (whatever its process seed) agrees.
func partition(name, source string, n int) int {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(source))
	return int(h.Sum64() % uint64(n))
}
