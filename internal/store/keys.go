package store

import (
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/dynometrics/dynometrics/internal/aggregate"
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

// frameKey remembers one Logplex Frame-Id of an app: dm:frame:<id> in
// single-app mode (app ""; as before multi-app mode existed), dm:aframe:<app>:<id>
// in multi-app mode, so that two apps' Frame-Ids never collide (an app name
// holds no ':', and the two forms differ in their second part).
func (s *Store) frameKey(app, id string) string {
	if app == "" {
		return s.cfg.Prefix + ":frame:" + id
	}
	return s.cfg.Prefix + ":aframe:" + app + ":" + id
}

// partition returns the partition of a series: FNV-1a of name, NUL,
// source, so that every worker (whatever its process seed) agrees. A series
// of an app (multi-app mode) hashes app, NUL, name, NUL, source; a series
// without one hashes as before multi-app mode existed, so that no series
// moves to another partition when workers are upgraded one by one.
func partition(app, name, source string, n int) int {
	h := fnv.New64a()
	if app != "" {
		_, _ = h.Write([]byte(app))
		_, _ = h.Write([]byte{0})
	}
	_, _ = h.Write([]byte(name))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(source))
	return int(h.Sum64() % uint64(n))
}

// skey is one series: app (empty in single-app mode), name, source.
type skey struct {
	app, name, source string
}

// keyOf returns st's series.
func keyOf(st *aggregate.State) skey { return skey{st.App, st.Name, st.Source} }

// line is the series in a fallback record (the fallback hash, see
// fallbackScript): "name NUL source", then "NUL app" for a series of an app.
// The form without an app is the one earlier releases wrote and read.
func (k skey) line() string {
	if k.app == "" {
		return k.name + "\x00" + k.source
	}
	return k.name + "\x00" + k.source + "\x00" + k.app
}

// parseLine reads what line wrote; false for a line of another form.
func parseLine(line string) (skey, bool) {
	name, rest, ok := strings.Cut(line, "\x00")
	if !ok {
		return skey{}, false
	}
	source, app, _ := strings.Cut(rest, "\x00")
	return skey{app, name, source}, true
}

// seriesField is a series' field in the totals hash: kind, unit, name and
// source, NUL-separated (none of them may hold a NUL byte that matters: a
// name with one merely shares a field with another such name). A series of
// an app has "app NUL" in front: an app name starts with a letter, a kind
// with a digit, so the two forms never meet, and the form without an app is
// the one earlier releases wrote (running totals survive an upgrade).
func seriesField(st *aggregate.State) string {
	f := strconv.Itoa(int(st.Kind)) + "\x00" + st.Unit + "\x00" + st.Name + "\x00" + st.Source
	if st.App == "" {
		return f
	}
	return st.App + "\x00" + f
}
