package aggregate

import (
	"hash/maphash"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynometrics/dynometrics/internal/appstats"
)

// Fair series admission. Opening a series is where memory grows, so it is
// where the bound MaxSeries is enforced; how it is enforced decides who loses
// when something floods the aggregator with ever-new names (an app logging
// user input as metric names, or anyone holding the drain's credentials). The
// rules, per bucket:
//
//   - A known series, one present in the buckets of the last two flushes,
//     keeps its place: it is admitted while its bucket holds fewer than
//     MaxSeries series, and room for it is reserved (see below), so a burst
//     of new names cannot push out the app's established metrics.
//   - A new series is admitted while the bucket's new series number fewer
//     than its room: MaxSeries minus the reserve, where the reserve is the
//     number of series the last flush saw, at most three quarters of
//     MaxSeries (new dynos and new metrics always have a quarter).
//   - Per source: once half of that room is used, a source that already
//     opened an eighth of it opens no more new series in this bucket, so one
//     noisy dyno cannot take the room of the others.
//   - Per app (multi-app mode): half of that room is promised to the active
//     apps in equal parts, room/(2×apps) each (at least 1), where the active
//     apps are those with series in the buckets of the last two flushes and
//     those opening new series in this bucket. An app within its part always
//     opens new series (while the room lasts); beyond it, an app borrows only
//     room no other active app is still promised. So one app's burst of new
//     names leaves every other app its part, however many apps there are,
//     and an app alone takes what the others do not use.
//   - All open buckets together (the one in its grace period, the current one,
//     those ahead within MaxFuture) hold at most 2×MaxSeries series: the
//     memory bound.
//
// Each refusal is counted by reason in Stats (DroppedSeriesLimit,
// DroppedSourceShare, DroppedAppShare, DroppedOpenLimit), and per app in
// Config.Apps. The state lives in its own mutex, taken only when a series
// opens (or is refused), never on the path that adds to an existing series.

// admission is the Aggregator's fair-admission state.
type admission struct {
	mu      sync.Mutex
	buckets map[int64]*bucketAdmission // by bucket start, for open buckets

	known atomic.Pointer[knownSeries]
}

// bucketAdmission counts the series one bucket opened.
type bucketAdmission struct {
	n, fresh  int            // series opened; of those, new (unknown) ones
	perSource map[string]int // new series opened per source

	// Per app (multi-app mode); perApp is nil until an app opens a new
	// series. active, share and promised are computed with the known
	// series appsOf, and again when those change or an app joins.
	perApp   map[string]int // new series opened per app
	appsOf   *knownSeries
	active   int // apps known or in perApp
	share    int // new series promised to each active app
	promised int // promises kept: the sum over apps of min(perApp[app], share)

	// taken are the series of this bucket handed over to shared state
	// (TakeStates): one that opens again is the same series of the same
	// bucket, already counted; takenApps are their apps. Both become the
	// known ones when the bucket's deadline passes. nil without shared
	// state.
	taken     map[uint64]struct{}
	takenApps map[string]struct{}
}

// knownSeries are the hashes of the series of the buckets of the last two
// flushes, and the apps those series belong to (multi-app mode). Immutable
// once published; empty, never nil, before the first flush.
type knownSeries struct {
	cur, prev map[uint64]struct{}
	curApps   map[string]struct{} // the apps of cur
	apps      map[string]struct{} // the apps of cur and prev
}

func (k *knownSeries) has(h uint64) bool {
	if _, ok := k.cur[h]; ok {
		return true
	}
	_, ok := k.prev[h]
	return ok
}

// seriesHash is the hash addOne picks a shard with, of a series without
// an app (single-app mode).
func seriesHash(seed maphash.Seed, name, source string) uint64 {
	return maphash.String(seed, name)*0x9E3779B97F4A7C15 ^ maphash.String(seed, source)
}

// appSeriesHash is seriesHash of app's series (multi-app mode); app ""
// gives seriesHash.
func appSeriesHash(seed maphash.Seed, app, name, source string) uint64 {
	return seriesHash(seed, name, source) ^ appHash(seed, app)
}

// appHash is what appSeriesHash mixes into seriesHash for app: 0 for ""
// (single-app mode). Add computes it once per run of one app's
// measurements.
func appHash(seed maphash.Seed, app string) uint64 {
	if app == "" {
		return 0
	}
	return maphash.String(seed, app) * 0xC2B2AE3D27D4EB4F
}

// admit decides whether a series with hash h of app (multi-app mode, else
// "") and source may open in the bucket starting at start, and counts it as
// open if so; it returns added, or the reason it refused (addOne counts it).
// Called with a shard lock held (shard locks are never taken under
// admission.mu).
func (a *Aggregator) admit(h uint64, start int64, app, source string) outcome {
	k := a.adm.known.Load()
	known := k.has(h)
	ad := &a.adm
	c := a.cfg.MaxSeries
	ad.mu.Lock()
	defer ad.mu.Unlock()
	if a.open.Load() >= 2*int64(c) {
		return appstats.OpenLimit
	}
	b := ad.buckets[start]
	if b == nil {
		b = &bucketAdmission{perSource: make(map[string]int)}
		ad.buckets[start] = b
	}
	if _, ok := b.taken[h]; ok {
		a.open.Add(1) // opens again after a hand-over: counted in this bucket already
		return added
	}
	if known && b.n >= c {
		return appstats.SeriesLimit
	}
	if !known {
		room := c - min(len(k.cur), c*3/4)
		if b.fresh >= room {
			return appstats.SeriesLimit
		}
		var na int
		if app != "" {
			na = b.appShare(k, app, room)
			// Beyond its promised part, an app borrows only room no other
			// active app is still promised.
			if na >= b.share && room-b.fresh <= b.active*b.share-b.promised {
				return appstats.AppShare
			}
			source = app + "\x00" + source // two apps' web.1 are two sources
		}
		n, ok := b.perSource[source]
		if b.fresh >= room/2 && n >= max(room/8, 1) {
			return appstats.SourceShare
		}
		if !ok {
			source = strings.Clone(source) // may alias the parser's buffer
		}
		b.perSource[source] = n + 1
		b.fresh++
		if app != "" {
			b.perApp[app] = na + 1 // app is a key already (appShare)
			if na < b.share {
				b.promised++
			}
		}
	}
	b.n++
	a.open.Add(1)
	return added
}

// appShare returns how many new series app opened in b so far, making sure
// app is among b's active apps and b's share and promises are those of the
// known series k and a room for new series of room. Called with
// admission.mu held.
func (b *bucketAdmission) appShare(k *knownSeries, app string, room int) int {
	n, ok := b.perApp[app]
	if ok && b.appsOf == k {
		return n
	}
	if b.perApp == nil {
		b.perApp = make(map[string]int)
	}
	if !ok {
		b.perApp[strings.Clone(app)] = 0 // may alias the parser's buffer
	}
	b.appsOf, b.active = k, len(k.apps)
	for name := range b.perApp {
		if _, known := k.apps[name]; !known {
			b.active++
		}
	}
	b.share = max(room/(2*b.active), 1)
	b.promised = 0
	for _, n := range b.perApp {
		b.promised += min(n, b.share)
	}
	return n
}

// handedOver records the series TakeStates took out of the buckets (parts)
// and their apps, so that their opening again in the same
// bucket is not counted twice, and drops the admission state of the buckets
// whose deadline passed at now, which shared state flushes, not this
// aggregator. The series it handed over for the buckets it drops become the
// known series, and their apps (with the apps that opened series there) the
// known apps, as a flush makes them without shared state: so a burst of new
// names cannot push out the series this worker saw in the last buckets, and
// an app that bursts first in a bucket does not take the other apps' parts.
// Called with flushMu held and no shard lock.
func (a *Aggregator) handedOver(parts []*shardBucket, now time.Time) {
	cutoff := a.dueCutoff(now)
	hashes, apps := make([]map[uint64]struct{}, len(parts)), make([]map[string]struct{}, len(parts))
	for i, p := range parts { // hashed before the lock, which admit waits for
		hashes[i], apps[i] = a.seriesOf(p)
	}
	a.adm.mu.Lock()
	defer a.adm.mu.Unlock()
	for i, p := range parts {
		switch b := a.adm.buckets[p.start]; {
		case b == nil:
		case b.taken == nil:
			b.taken, b.takenApps = hashes[i], apps[i]
		default:
			maps.Copy(b.taken, hashes[i])
			maps.Copy(b.takenApps, apps[i])
		}
	}
	var cur map[uint64]struct{}
	var curApps map[string]struct{}
	for start, b := range a.adm.buckets {
		if start > cutoff {
			continue
		}
		if cur == nil {
			cur, curApps = make(map[uint64]struct{}, len(b.taken)), make(map[string]struct{})
		}
		maps.Copy(cur, b.taken)
		maps.Copy(curApps, b.takenApps)
		for app := range b.perApp {
			curApps[app] = struct{}{}
		}
		delete(a.adm.buckets, start)
	}
	if cur != nil {
		a.publishKnown(cur, curApps)
	}
}

// publishKnown makes cur the known series of the last flush and curApps
// (not nil) their apps; the known series of the flush before become prev,
// and the known apps are those of both.
func (a *Aggregator) publishKnown(cur map[uint64]struct{}, curApps map[string]struct{}) {
	old := a.adm.known.Load()
	k := &knownSeries{cur: cur, prev: old.cur, curApps: curApps, apps: maps.Clone(curApps)}
	maps.Copy(k.apps, old.curApps)
	a.adm.known.Store(k)
}

// seriesOf returns the hashes (appSeriesHash) of the series of parts, and
// their apps.
func (a *Aggregator) seriesOf(parts ...*shardBucket) (map[uint64]struct{}, map[string]struct{}) {
	n := 0
	for _, p := range parts {
		n += p.len()
	}
	hashes, apps := make(map[uint64]struct{}, n), make(map[string]struct{})
	for _, p := range parts {
		for k := range p.series {
			hashes[seriesHash(a.seed, k.name, k.source)] = struct{}{}
		}
		for app, ab := range p.apps {
			apps[app] = struct{}{}
			for k := range ab.series {
				hashes[appSeriesHash(a.seed, app, k.name, k.source)] = struct{}{}
			}
		}
	}
	return hashes, apps
}

// forget drops the admission state of the buckets starting at or before
// cutoff, which collect just took out as parts, and publishes the series of
// parts as the known ones. Called with flushMu held and no shard lock.
func (a *Aggregator) forget(cutoff int64, parts []*shardBucket) {
	a.adm.mu.Lock()
	maps.DeleteFunc(a.adm.buckets, func(start int64, _ *bucketAdmission) bool { return start <= cutoff })
	a.adm.mu.Unlock()
	if len(parts) > 0 {
		a.publishKnown(a.seriesOf(parts...))
	}
}
