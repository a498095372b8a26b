package store

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dynometrics/dynometrics/internal/aggregate"
	"github.com/dynometrics/dynometrics/internal/outlet"
	"github.com/redis/go-redis/v9"
)

// Retry delays of a bucket some outlet did not accept: doubled per attempt
// from minRetry up to maxRetry.
const (
	minRetry = 2 * time.Second
	maxRetry = time.Minute
)

// flight is one (partition, bucket) handed to the outlets and not yet
// settled by all of them.
type flight struct {
	key      pkey
	token    int64           // the lease token it was flushed under
	waiting  map[string]bool // outlets that have not settled it
	failed   error           // why an outlet dropped it, for a reason a resend may fix (the last one)
	attempts int
}

// retryDelay is the wait before retrying a bucket after n earlier retries.
func retryDelay(n int) time.Duration { return min(maxRetry, minRetry<<min(n, 10)) }

type retryState struct {
	at       time.Time
	attempts int
	failures int  // flushes of it that failed in a row while Redis answered
	given    bool // abandoned after MaxFlushFailures: skipped until its keys expire
}

// MaxFlushFailures bounds the flushes of one (partition, bucket) that may
// fail in a row while Redis answers (a damaged key: WRONGTYPE, a malformed
// record): each is retried after its own backoff (2 s, 4 s, … up to 1 min,
// about 5 minutes in all) while every other bucket and partition goes on,
// and then it is abandoned, counted in Stats.BucketsAbandoned and logged
// once. Failures while Redis is unavailable (timeouts, refused connections,
// auth, OOM, read-only) do not count: those buckets wait, up to MaxAge.
const MaxFlushFailures = 10

// Run flushes, every interval, the due buckets of the partitions whose lease
// this worker holds or can take, until ctx ends. Leases are renewed by a
// goroutine of their own (every second, or LeaseTTL/5 if shorter), so that
// a long merge or a slow outlet never lets them lapse, and the outlets'
// verdicts are recorded in Redis as they arrive. Call Release afterwards, once the outlets are closed.
func (s *Store) Run(ctx context.Context, every time.Duration) {
	s.renewing.Store(true)
	defer s.renewing.Store(false)
	s.renew(ctx)
	renew := time.NewTicker(min(time.Second, s.cfg.LeaseTTL/5))
	defer renew.Stop()
	var wg sync.WaitGroup
	wg.Go(func() { each(ctx, renew.C, func() { s.renew(ctx) }) })
	wg.Go(func() { each(ctx, s.kick, func() { s.processSettled(ctx) }) })
	defer wg.Wait()
	t := time.NewTicker(every)
	defer t.Stop()
	s.Tick(ctx)
	each(ctx, t.C, func() { s.Tick(ctx) })
}

// each calls f for every value received from c until ctx ends.
func each[T any](ctx context.Context, c <-chan T, f func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c:
			f()
		}
	}
}

// Tick is one round of Run: record what the outlets settled, renew or take
// leases (unless Run's own goroutine does), and flush every due bucket of
// the partitions held. Exported for tests that drive the clock.
func (s *Store) Tick(ctx context.Context) {
	s.processSettled(ctx)
	s.releaseLeaving(ctx)
	if !s.renewing.Load() {
		s.renew(ctx)
	}
	held := s.ready()
	if len(held) == 0 {
		return
	}
	// No flush while the last lease round did not reach Redis (it may be
	// back for this round's requests, not yet for the other workers'
	// retried hand-overs), nor during the hold that follows its return.
	if s.holding() {
		s.stats.FlushWaits.Add(1)
		return
	}
	now := s.cfg.Now()
	cutoff := dueCutoff(now, s.cfg.Resolution, s.cfg.Grace)
	if who := s.owing(ctx); who != "" {
		s.stats.FlushWaits.Add(1)
		s.warn("owing", "store: holding due buckets back: a live worker holds partials Redis refused (out of memory)", "worker", who)
		return
	}
	cmds, err := s.runPipe(ctx, func(pipe redis.Pipeliner) {
		for _, h := range held {
			k := s.keys(h.p)
			evalsha(ctx, pipe, dueScript, []string{k.lease(), k.upto(), k.pending()}, h.token, cutoff)
		}
	})
	if len(cmds) != len(held) {
		s.stats.FlushErrors.Add(1)
		s.failed("pending", err, "store: cannot list due buckets; retrying")
		return
	}
	for i, h := range held {
		starts, err := cmds[i].(*redis.Cmd).StringSlice()
		if s.fenced(h.p, h.token, err) {
			continue
		}
		if err != nil {
			// This partition only: the others go on.
			s.stats.FlushErrors.Add(1)
			s.failed("pending", err, "store: cannot list due buckets; retrying", "partition", h.p)
			continue
		}
		if s.flushDue(ctx, h, starts, now) {
			s.drained(h, cutoff)
		}
	}
}

// drained notes that every bucket of a partition this worker is leaving
// due at cutoff was handed to the outlets (or waits for its own retry,
// which the next holder takes over): releaseLeaving may give the lease up
// once those deliveries settled, as long as no other bucket came due since.
func (s *Store) drained(h heldLease, cutoff int64) {
	s.mu.Lock()
	if l := s.held[h.p]; l != nil && l.token == h.token && l.leaving {
		l.drained, l.drainedCut = true, cutoff
	}
	s.mu.Unlock()
}

// flushDue flushes the due buckets (starts) of one held partition, oldest
// first; it reports whether it went through them all (false: the lease
// lapsed or was fenced meanwhile).
func (s *Store) flushDue(ctx context.Context, h heldLease, starts []string, now time.Time) bool {
	for _, str := range starts {
		start, err := strconv.ParseInt(str, 10, 64)
		if err != nil {
			continue
		}
		if !s.valid(h.p, h.token) {
			return false // the lease lapsed meanwhile: the next holder flushes the rest
		}
		if s.holding() {
			// Redis went away from the lease round, or came back, while this
			// round flushed: a fallen-back worker's record and the others'
			// retried hand-overs first.
			s.stats.FlushWaits.Add(1)
			return false
		}
		k := pkey{h.p, start}
		s.mu.Lock()
		_, busy := s.flights[k]
		r := s.retry[k]
		s.mu.Unlock()
		if busy || r.given || now.Before(r.at) {
			continue
		}
		t0 := time.Now()
		err = s.flush(ctx, k, h.token, r.attempts, now)
		s.stats.flushNanos.Add(uint64(time.Since(t0)))
		if err != nil {
			if s.fenced(h.p, h.token, err) {
				return false
			}
			s.flushFailed(ctx, k, h.token, r, err, now)
			continue // every other bucket and partition goes on
		}
	}
	return true
}

// flushFailed schedules the retry of a bucket whose flush failed, with its
// own backoff, and abandons it after MaxFlushFailures failures in a row
// while Redis answered.
func (s *Store) flushFailed(ctx context.Context, k pkey, token int64, r retryState, err error, now time.Time) {
	s.stats.FlushErrors.Add(1)
	bucket := time.Unix(k.start, 0).UTC()
	reason := s.failed("flush", err, "store: flush failed; retrying this bucket after a backoff", "bucket", bucket, "partition", k.p)
	if reason == ReasonWrongType || reason == ReasonOther {
		r.failures++
	}
	r.attempts++
	r.at = now.Add(retryDelay(r.attempts - 1))
	if r.failures >= MaxFlushFailures {
		r.given = true
		s.stats.BucketsAbandoned.Add(1)
		s.log.Error("store: a bucket failed to flush too often while Redis answered; abandoned (its series are lost)",
			"bucket", bucket, "partition", k.p, "failures", r.failures, "reason", reason, "err", s.redact(err))
		// Best effort: its keys expire with Retention anyway.
		if s.drop(ctx, k, token) == nil {
			return
		}
	}
	s.setRetry(k, r)
}

// setRetry records the retry state of bucket k, and forgets that of buckets
// older than Retention: their keys are gone from Redis.
func (s *Store) setRetry(k pkey, r retryState) {
	old := s.cfg.Now().Add(-s.cfg.Retention).Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retry[k] = r
	maps.DeleteFunc(s.retry, func(k pkey, _ retryState) bool { return k.start < old })
}

// owing returns the id of a live worker that holds partials Redis refused
// to store (its last hand-over was refused for lack of memory), or "". Such
// a worker keeps its alive mark (PEXPIRE, allowed under OOM) and deletes its
// clean mark (DEL, allowed too); a worker that stopped (crashed, paused,
// cut off) lets its alive mark expire after LeaseTTL. While one owes,
// flushers close no bucket: the buckets go out late but whole once Redis
// takes the partials (or the worker's fallback sends its part, after
// REDIS_FALLBACK_AFTER). A failed read waits for nothing.
func (s *Store) owing(ctx context.Context) string {
	octx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	ids, err := s.rdb.SMembers(octx, s.workersKey()).Result()
	s.count(1)
	if err != nil || len(ids) == 0 {
		return ""
	}
	keys := make([]string, 0, 2*len(ids))
	for _, id := range ids {
		keys = append(keys, s.aliveKey(id), s.cleanKey(id))
	}
	vals, err := s.rdb.MGet(octx, keys...).Result()
	s.count(1)
	if err != nil || len(vals) != len(keys) {
		return ""
	}
	var gone []any
	who := ""
	for i, id := range ids {
		alive, clean := vals[2*i] != nil, vals[2*i+1] != nil
		switch {
		case !alive && !clean:
			gone = append(gone, id)
		case alive && !clean && who == "":
			who = id
		}
	}
	if len(gone) > 0 {
		_ = s.rdb.SRem(octx, s.workersKey(), gone...).Err()
		s.count(1)
	}
	return who
}

// dueCutoff returns the start of the newest bucket whose end plus grace has
// passed at now.
func dueCutoff(now time.Time, res, grace time.Duration) int64 {
	sec := now.Add(-res - grace).Unix()
	r := int64(res / time.Second)
	return sec - (sec%r+r)%r // floor, before 1970 too
}

// lease is one partition's lease as this worker holds it.
type lease struct {
	token int64     // fencing token: every flush-side script checks it
	since time.Time // when taken (cfg.Now), for LeaseSettle
	until time.Time // wall clock: the lease is surely still ours before this
	// leaving: above this worker's fair share; Tick releases it once a
	// flush round went through its due buckets (drained, up to the due
	// cutoff drainedCut), their deliveries settled and no other bucket
	// came due since.
	leaving    bool
	drained    bool
	drainedCut int64
}

// heldLease is a partition ready to flush and its token.
type heldLease struct {
	p     int
	token int64
}

// errFenced says that a flush-side write was refused: the partition's lease
// expired or moved to another worker. Not a Redis failure.
var errFenced = errors.New("store: the partition's lease is no longer this worker's")

// renew runs one lease round (renewLeases) and logs its failure.
func (s *Store) renew(ctx context.Context) {
	if err := s.renewLeases(ctx); err != nil {
		s.failed("leases", err, "store: cannot renew or take partition leases; retrying")
	}
}

// renewLeases renews the leases held and takes free ones. Without Balance
// (REDIS_BALANCE off) it tries every partition in one round trip. With it,
// it announces this worker (its heartbeat in the live-workers zset) and
// takes free leases up to its fair share, in two round trips: the first
// reads the live workers and every lease, the second runs the lease script
// on the partitions held and on the free ones chosen (shareLocked).
//
// A lease is taken as surely held until 9/10 of LeaseTTL after the request
// was sent; a renewal that fails leaves that bound as it was, so that a
// worker cut off from Redis stops delivering before another can take its
// partitions over.
func (s *Store) renewLeases(ctx context.Context) error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	ttl := s.cfg.LeaseTTL
	n := s.cfg.Partitions
	var ids []string
	var lerr error
	// Without Balance, try every partition: the script refuses those others hold.
	free := slices.Repeat([]bool{!s.cfg.Balance}, n)
	if s.cfg.Balance {
		look, err := s.runPipe(ctx, func(pipe redis.Pipeliner) {
			evalsha(ctx, pipe, liveScript, []string{s.liveKey()}, s.cfg.ID, ttl.Milliseconds())
			for p := range n {
				pipe.Get(ctx, s.keys(p).lease())
			}
		})
		if len(look) != n+1 {
			s.leaseRound(false)
			return err
		}
		ids, lerr = look[0].(*redis.Cmd).StringSlice()
		s.leaseRound(lerr == nil)
		for p := range n {
			free[p] = errors.Is(look[p+1].Err(), redis.Nil)
		}
	}

	s.mu.Lock()
	try := s.shareLocked(ids, s.cfg.Balance && lerr == nil, free)
	last := slices.Clone(s.lastTok) // a held lease's token is its partition's last
	holds := slices.Repeat([]string{"0"}, n)
	for p := range s.held {
		holds[p] = "1"
	}
	s.mu.Unlock()
	if len(try) == 0 {
		return s.redact(lerr)
	}
	sent := time.Now()
	cmds, err := s.runPipe(ctx, func(pipe redis.Pipeliner) {
		for _, p := range try {
			k := s.keys(p)
			evalsha(ctx, pipe, leaseScript, []string{k.lease(), k.epoch()}, s.cfg.ID, ttl.Milliseconds(), last[p], holds[p])
		}
	})
	if len(cmds) != len(try) {
		if !s.cfg.Balance { // with Balance, the first round trip told leaseRound
			s.leaseRound(false)
		}
		return err
	}
	s.leaseRound(reached(cmds))
	return s.applyLeases(try, cmds, sent, ttl, lerr)
}

// shareLocked notes the live workers read (ids, when ok), marks
// the leases above this worker's fair share leaving or takes leaving ones
// back, and returns the partitions to try: those held, then free ones up
// to the share (without Balance, live stays 0: every partition). Called
// with s.mu held.
//
// With N live workers (sorted by id, so that every worker agrees) the
// worker of rank r has the target ⌊P/N⌋, plus one when r < P mod N; the
// targets add up to P. A worker above its target marks its surplus leases
// leaving (no new flush starts on them) and Tick releases each once its
// deliveries have settled; a worker below takes free partitions, starting
// at an offset of its own to spread the takes. See docs/shared-state.md.
func (s *Store) shareLocked(ids []string, ok bool, free []bool) []int {
	n := s.cfg.Partitions
	if ok {
		if !slices.Contains(ids, s.cfg.ID) {
			ids = append(ids, s.cfg.ID)
		}
		slices.Sort(ids)
		s.live, s.rank = len(ids), slices.Index(ids, s.cfg.ID)
	}
	// Until the live workers are known: the old rule, take what is free;
	// when the heartbeat failed, the last live count read.
	target := n
	if s.live > 0 {
		target = n / s.live
		if s.rank < n%s.live {
			target++
		}
	}
	// Mark the surplus leaving (highest partitions first, those without a
	// delivery in flight before the others), or take leaving ones back.
	keep := slices.Collect(maps.Keys(s.held))
	slices.SortFunc(keep, func(a, b int) int {
		if fa := s.inFlightLocked(a); fa != s.inFlightLocked(b) {
			if fa {
				return -1
			}
			return 1
		}
		return a - b
	})
	for i, p := range keep {
		l := s.held[p]
		l.leaving = i >= target
		if !l.leaving {
			l.drained = false
		}
	}
	need := target - len(keep)
	try := slices.Clone(keep)
	off := 0
	if s.live > 0 {
		off = s.rank * n / s.live
	}
	for i := 0; i < n && need > 0; i++ {
		if p := (off + i) % n; free[p] && s.held[p] == nil {
			try = append(try, p)
			need--
		}
	}
	return try
}

// inFlightLocked says whether a delivery of partition p is in flight.
// Called with s.mu held.
func (s *Store) inFlightLocked(p int) bool {
	for k := range s.flights {
		if k.p == p {
			return true
		}
	}
	return false
}

// reached says whether some command of a pipeline got a reply of Redis'
// own (the others may have failed for reasons of their own: a damaged key).
func reached(cmds []redis.Cmder) bool {
	return slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return c.Err() == nil || isFenced(c.Err()) })
}

// leaseRound records whether a lease round reached Redis. The first that
// does after one that did not holds this worker's flushes back
// (holdFlushes) before any lease it renews counts as held again: requests
// sent while Redis did not answer (a paused or partitioned Redis) run when
// it answers again, this worker's lease renewals among them, and a flush
// round right then would close buckets whose partials the other workers,
// cut off too, have not handed over yet.
func (s *Store) leaseRound(ok bool) {
	if !ok {
		s.renewDown.Store(true)
		return
	}
	if s.renewDown.Load() {
		s.holdFlushes() // before the flag clears: Tick checks the flag, then the hold
		s.renewDown.Store(false)
	}
}

// holding says whether flushes are held back: the last lease round did not
// reach Redis, or holdFlushes' hold has not ended.
func (s *Store) holding() bool {
	return s.renewDown.Load() || time.Now().UnixNano() < s.holdUntil.Load()
}

// holdFlushes holds this worker's flushes back for a while after it
// finds Redis back after an outage or its data lost: the other workers'
// hand-overs, retried every REDIS_HANDOVER (shorter than the grace), land
// first, so that a partition's holder does not close a bucket whose
// partials another worker still holds unwritten. With the partitions spread
// over the workers (balanced leases), every worker is a flusher and would
// otherwise race the others' retries.
//
// The hold is the longer of METRICS_GRACE and LeaseSettle; none when
// LeaseSettle is disabled (negative, for tests that drive the clock).
func (s *Store) holdFlushes() {
	if s.cfg.LeaseSettle <= 0 {
		return
	}
	s.holdUntil.Store(time.Now().Add(max(s.cfg.Grace, s.cfg.LeaseSettle)).UnixNano())
}

// applyLeases records the lease script's replies, cmds[i] for partition
// try[i]: a token means held until sent + 9/10 of ttl, 0 means lost to
// another worker, an error keeps what is known (the lease lapses at its
// bound). It returns the first error (firstErr, or a reply's).
func (s *Store) applyLeases(try []int, cmds []redis.Cmder, sent time.Time, ttl time.Duration, firstErr error) error {
	now := s.cfg.Now()
	s.mu.Lock()
	for i, c := range cmds {
		p := try[i]
		tok, err := c.(*redis.Cmd).Int64()
		switch {
		case err != nil:
			firstErr = cmp.Or(firstErr, err)
			continue // keep what we know: the lease lapses at its bound
		case tok == 0:
			if l := s.held[p]; l != nil {
				s.stats.LeasesLost.Add(1)
				s.warn("lease-lost", "store: a partition's lease moved to another worker; stopped delivering it", "partition", p)
			}
			delete(s.held, p)
			continue
		}
		since := now
		if tok < 0 {
			// Taken from a clean release: nothing of the last holder's
			// is in flight, no settling time.
			tok, since = -tok, now.Add(-max(s.cfg.LeaseSettle, 0))
		}
		l := s.held[p]
		if l == nil || l.token != tok {
			l = &lease{token: tok, since: since}
			s.held[p] = l
		}
		l.until = sent.Add(ttl * 9 / 10)
		s.lastTok[p] = tok
	}
	s.mu.Unlock()
	return s.redact(firstErr)
}

// releaseLeaving gives up the leases renew marked leaving once the last
// flush round handed every bucket due now to the outlets and their
// deliveries have all settled (recorded in Redis by processSettled), so
// that the worker that takes the partition over finds every verdict,
// resends nothing, and has no bucket overdue (it takes the lease from a
// clean release and flushes at once, without LeaseSettle). Called by Tick,
// between two flush rounds: no flush of the partition is under way.
func (s *Store) releaseLeaving(ctx context.Context) {
	if !s.cfg.Balance {
		return
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.pmu.Lock() // no verdict of ours is being recorded
	defer s.pmu.Unlock()
	cutoff := dueCutoff(s.cfg.Now(), s.cfg.Resolution, s.cfg.Grace)
	s.mu.Lock()
	var out []int
	for p, l := range s.held {
		if !l.leaving || !l.drained || l.drainedCut != cutoff {
			continue
		}
		if !s.inFlightLocked(p) && !slices.ContainsFunc(s.settled, func(v verdict) bool { return v.fl.key.p == p }) {
			out = append(out, p)
			delete(s.held, p)
		}
	}
	s.mu.Unlock()
	if len(out) == 0 {
		return
	}
	cmds, err := s.release(ctx, out)
	if err != nil && len(cmds) != len(out) {
		s.failed("leases", err, "store: cannot release surplus leases; they lapse after REDIS_LEASE_TTL")
		return
	}
	for _, c := range cmds {
		if c.Err() == nil {
			s.stats.LeasesReleased.Add(1)
		}
	}
	s.log.Info("store: released partitions to balance the fleet", "partitions", out)
}

// ready returns the partitions whose lease is surely held and was taken at
// least LeaseSettle ago (or from a clean release), ascending: a worker that
// just took a partition over from a holder whose lease lapsed leaves that
// holder, whose Redis connection may have stalled, time to record the
// deliveries its outlets settled meanwhile, so that it does not resend
// them. Partitions marked leaving are flushed too, until releaseLeaving
// gives them up: a bucket that comes due during a move is delivered on
// time by the worker that holds it, not after the move.
func (s *Store) ready() []heldLease {
	now, wall := s.cfg.Now(), time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []heldLease
	for p, l := range s.held {
		if wall.Before(l.until) && now.Sub(l.since) >= s.cfg.LeaseSettle {
			out = append(out, heldLease{p, l.token})
		}
	}
	slices.SortFunc(out, func(a, b heldLease) int { return a.p - b.p })
	return out
}

// valid says whether this worker surely still holds partition p's lease
// under token. Outlets ask it before each request (Bucket.Valid).
func (s *Store) valid(p int, token int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.held[p]
	return l != nil && l.token == token && time.Now().Before(l.until)
}

// fenced reports whether err is a fencing refusal; if so it forgets the
// lease (the renewal finds out who holds it now) and counts it.
func (s *Store) fenced(p int, token int64, err error) bool {
	if !isFenced(err) {
		return false
	}
	s.stats.Fenced.Add(1)
	s.mu.Lock()
	if l := s.held[p]; l != nil && l.token == token {
		delete(s.held, p)
		s.stats.LeasesLost.Add(1)
	}
	s.mu.Unlock()
	s.warn("fenced", "store: a flush-side write was refused: this worker's lease of the partition lapsed or moved; stopped", "partition", p)
	return true
}

func isFenced(err error) bool {
	return err != nil && (errors.Is(err, errFenced) || strings.HasPrefix(err.Error(), "FENCED"))
}

// flush closes one (partition, bucket) under the lease token, merges its
// partials, computes its totals and hands it to the outlets that do not have
// it yet. Every write checks the token (a FENCED error when the lease moved).
func (s *Store) flush(ctx context.Context, k pkey, token int64, attempts int, now time.Time) error {
	keys := s.keys(k.p)
	ttl := int64(s.cfg.Retention / time.Second)
	reply, err := s.eval(ctx, closeScript, []string{keys.lease(), keys.closed(k.start), keys.parts(k.start), keys.done(k.start),
		keys.sent(k.start), keys.fb(k.start)}, token, ttl).Slice()
	if err != nil {
		return err
	}
	prev, done, raw, fellBack, err := closeReply(reply)
	if err != nil {
		return err
	}
	start := time.Unix(k.start, 0).UTC()
	if now.Sub(start.Add(s.cfg.Resolution)) > s.cfg.MaxAge {
		s.stats.BucketsAbandoned.Add(1)
		s.log.Error("store: bucket older than the age bound was never delivered; deleting it",
			"bucket", start, "partition", k.p, "delivered_to", done)
		return s.cleanup(ctx, k, token)
	}
	// Series a worker sent itself while Redis was down are not sent again
	// (a second, different value). What other workers had of them is
	// counted as dropped.
	states := s.merge(raw)
	n := len(states)
	states = slices.DeleteFunc(states, func(st *aggregate.State) bool { return fellBack[keyOf(st)] })
	s.stats.FallbackExcluded.Add(uint64(n - len(states)))
	skip := func(name string) bool { return slices.Contains(done, name) }
	fl := &flight{key: k, token: token, waiting: make(map[string]bool), attempts: attempts}
	for _, o := range s.cfg.Outlets {
		if !skip(o) {
			fl.waiting[o] = true
		}
	}
	if len(states) == 0 || len(fl.waiting) == 0 {
		return s.cleanup(ctx, k, token)
	}
	totals, err := s.totals(ctx, k, token, states)
	if err != nil {
		return err
	}
	if err := s.publish(ctx, k, states); err != nil {
		s.stats.FeedDropped.Add(1)
		s.failed("feed", err, "store: cannot append a merged bucket to the feed (viewers miss it)")
	}

	b := bucketOf(start, s.cfg.Resolution, states)
	for i := range b.Series {
		b.Series[i].Totals = totals[i]
	}
	resend := attempts > 0 || len(done) > 0
	if !s.valid(k.p, token) {
		return errFenced
	}
	if prev != "" && prev != strconv.FormatInt(token, 10) {
		// Another holder handed this bucket to these outlets and never
		// recorded their verdicts (it stopped, crashed or stalled between
		// a receiver's answer and Redis): whether they have it cannot be
		// known. Sent again, with identical values, and counted.
		s.stats.Resends.Add(uint64(len(fl.waiting)))
		resend = true
		// Logged each time: at most one line per (partition, bucket) a
		// stopped holder left in flight, once per take-over.
		s.log.Warn("store: resending a bucket another worker handed to the outlets without recording the outcome (identical values)",
			"bucket", start, "bucket_unix", k.start, "partition", k.p, "outlets", len(fl.waiting))
	}
	s.mu.Lock()
	s.flights[k] = fl
	s.mu.Unlock()
	b.Done = func(name string, err error) { s.settle(fl, name, err) }
	b.Valid = func() bool { return s.valid(k.p, token) }
	s.stats.BucketsFlushed.Add(1)
	if resend {
		s.stats.BucketsResent.Add(1)
	}

	s.cfg.Deliver(b, skip)
	return nil
}

// closeReply reads closeScript's reply: the previous sent mark, the
// delivered set, the partials and the series some fallback sent.
func closeReply(reply []any) (prev string, done, raw []string, fellBack map[skey]bool, err error) {
	var lists [3][]string
	ok := len(reply) == 4
	if ok {
		prev, ok = reply[0].(string)
	}
	for i := 0; ok && i < len(lists); i++ {
		lists[i], ok = strs(reply[i+1])
	}
	if !ok {
		return "", nil, nil, nil, errors.New("store: unexpected reply of the close script")
	}
	fellBack = make(map[skey]bool)
	for _, list := range lists[2] {
		for _, line := range strings.Split(list, "\n") {
			if sk, ok := parseLine(line); ok {
				fellBack[sk] = true
			}
		}
	}
	return prev, lists[0], lists[1], fellBack, nil
}

// strs reads a script's reply that is a list of strings.
func strs(v any) ([]string, bool) {
	items, ok := v.([]any)
	out := make([]string, len(items))
	for i := 0; ok && i < len(items); i++ {
		out[i], ok = items[i].(string)
	}
	return out, ok
}

// merge decodes the partials (id, blob pairs) and merges them in id order,
// so that every merge of the same partials gives identical values.
func (s *Store) merge(raw []string) []*aggregate.State {
	parts := slices.SortedFunc(slices.Chunk(raw[:len(raw)&^1], 2), func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	m := make(map[skey]*aggregate.State)
	for _, p := range parts {
		states, err := decodeStates([]byte(p[1]))
		if err != nil {
			s.stats.BadBlobs.Add(1)
			s.warn("blob", "store: a partial in Redis does not decode; skipped", "err", err, "id", p[0])
			continue
		}
		for _, st := range states {
			sk := keyOf(st)
			if have := m[sk]; have != nil {
				if have.Merge(st) != nil {
					s.stats.SeriesConflicts.Add(1)
				}
				continue
			}
			m[sk] = st
		}
	}
	return slices.SortedFunc(maps.Values(m), aggregate.CompareStates)
}

// totals advances (once per bucket) and returns the running totals of the
// states, nil for kinds without totals.
func (s *Store) totals(ctx context.Context, k pkey, token int64, states []*aggregate.State) ([]*aggregate.Totals, error) {
	keys := s.keys(k.p)
	args := []any{token, k.start, int64(s.cfg.Retention / time.Second), int64(s.cfg.TotalsTTL / time.Second)}
	var idx []int
	for i, st := range states {
		if !wantsTotals(st.Kind) {
			continue
		}
		ser := st.Series()
		args = append(args, seriesField(st), strconv.FormatFloat(ser.Sum, 'g', -1, 64), strconv.FormatInt(ser.Count, 10))
		idx = append(idx, i)
	}
	out := make([]*aggregate.Totals, len(states))
	if len(idx) == 0 {
		return out, nil
	}
	reply, err := s.eval(ctx, totalsScript, []string{keys.lease(), keys.totals(), keys.tot(k.start), keys.prune()}, args...).Slice()
	if err != nil {
		return nil, err
	}
	if len(reply) != 2 {
		return nil, errors.New("store: malformed totals reply")
	}
	rec, ok1 := reply[0].(string)
	pruned, ok2 := reply[1].(int64)
	if !ok1 || !ok2 {
		return nil, errors.New("store: malformed totals reply")
	}
	s.stats.TotalsPruned.Add(uint64(pruned))
	lines := strings.Split(rec, "\n")
	if len(lines) != len(idx) {
		// A record from different partials cannot happen (the bucket is
		// closed before its totals are computed); refuse rather than mislabel.
		return nil, errors.New("store: recorded totals do not match the bucket's series")
	}
	for j, line := range lines {
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, errors.New("store: malformed totals record")
		}
		st, err1 := strconv.ParseInt(f[0], 10, 64)
		sum, err2 := strconv.ParseFloat(f[1], 64)
		cnt, err3 := strconv.ParseFloat(f[2], 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, errors.New("store: malformed totals record")
		}
		out[idx[j]] = &aggregate.Totals{Start: time.Unix(st, 0).UTC(), Sum: sum, Count: cnt}
	}
	return out, nil
}

// verdict is one or more outlet verdicts of a flight to record in Redis.
type verdict struct {
	fl      *flight
	outlets []string // accepted or refused for good: they join the delivered set
	refused int      // of those, refused
	final   bool     // every outlet settled the flight
}

// settle is Bucket.Done: it queues one outlet's verdict, which Run records
// in Redis at once (and Tick, in tests). It does not block.
func (s *Store) settle(fl *flight, name string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !fl.waiting[name] {
		return // an outlet we did not wait for, or a second call
	}
	delete(fl.waiting, name)
	v := verdict{fl: fl, final: len(fl.waiting) == 0}
	switch {
	case err == nil:
		v.outlets = []string{name}
	case errors.Is(err, outlet.ErrPermanent):
		v.outlets, v.refused = []string{name}, 1
	default:
		if errors.Is(err, outlet.ErrWithdrawn) {
			// The lease moved before the request: the new holder sends it.
			s.stats.Withdrawn.Add(1)
		}
		fl.failed = err
	}
	if v.final {
		delete(s.flights, fl.key)
	}
	if len(v.outlets) == 0 && !v.final {
		return
	}
	s.settled = append(s.settled, v)
	select {
	case s.kick <- struct{}{}: // Run records it now
	default:
	}
}

// processSettled records the outlets' verdicts: delivered outlets join the
// bucket's delivered set as each answers; a bucket every outlet settled for
// good is cleaned up; one an outlet dropped is retried later. Each record
// checks the lease token the bucket was flushed under: a worker whose lease
// moved records nothing (the new holder resends what it cannot know was
// delivered).
func (s *Store) processSettled(ctx context.Context) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	s.mu.Lock()
	settled := s.settled
	s.settled = nil
	s.mu.Unlock()
	for i, v := range settled {
		fl := v.fl
		err := s.record(ctx, fl.key, fl.token, v.final && fl.failed == nil, v.outlets...)
		if s.fenced(fl.key.p, fl.token, err) {
			s.forgetRetry(fl.key)
			continue
		}
		if err != nil {
			// Keep the rest for the next round.
			s.mu.Lock()
			s.settled = append(settled[i:], s.settled...)
			s.mu.Unlock()
			s.stats.FlushErrors.Add(1)
			s.failed("settle", err, "store: cannot record a delivered bucket; retrying")
			return
		}
		s.stats.OutletRefused.Add(uint64(v.refused))
		if !v.final {
			continue
		}
		if fl.failed == nil {
			s.forgetRetry(fl.key)
			s.stats.BucketsDone.Add(1)
			continue
		}
		s.setRetry(fl.key, retryState{at: s.cfg.Now().Add(retryDelay(fl.attempts)), attempts: fl.attempts + 1})
		s.warn("undelivered", "store: an outlet did not take a bucket; it stays in Redis and is resent",
			"err", fl.failed, "bucket", time.Unix(fl.key.start, 0).UTC())
	}
}

// cleanup deletes a settled (partition, bucket).
func (s *Store) cleanup(ctx context.Context, k pkey, token int64) error {
	err := s.drop(ctx, k, token)
	if err == nil {
		s.stats.BucketsDone.Add(1)
	}
	return err
}

// drop deletes a (partition, bucket)'s partials and bookkeeping.
func (s *Store) drop(ctx context.Context, k pkey, token int64) error {
	err := s.record(ctx, k, token, true)
	if err == nil {
		s.forgetRetry(k)
	}
	return err
}

// forgetRetry forgets the retry state of a bucket settled or moved away.
func (s *Store) forgetRetry(k pkey) {
	s.mu.Lock()
	delete(s.retry, k)
	s.mu.Unlock()
}

// record runs verdictScript on (partition, bucket) k under token: outlets
// join its delivered set, and clean removes its partials and bookkeeping.
func (s *Store) record(ctx context.Context, k pkey, token int64, clean bool, outlets ...string) error {
	keys := s.keys(k.p)
	args := []any{token, k.start, int64(s.cfg.Retention / time.Second), "0"}
	if clean {
		args[3] = "1"
	}
	for _, o := range outlets {
		args = append(args, o)
	}
	return s.eval(ctx, verdictScript, []string{keys.lease(), keys.parts(k.start), keys.done(k.start), keys.pending(),
		keys.fed(k.start), keys.tot(k.start), keys.sent(k.start), keys.fb(k.start)}, args...).Err()
}

// Release records what the outlets settled (call it after closing them) and
// gives up this worker's leases, so that another worker takes over at once.
// Buckets some outlet did not take stay in Redis for the next worker.
func (s *Store) Release(ctx context.Context) error {
	s.processSettled(ctx)
	s.mu.Lock()
	held := slices.Collect(maps.Keys(s.held))
	clear(s.held)
	s.mu.Unlock()
	_, err := s.release(ctx, held)
	// Best effort: the others rebalance at their next renewal; a heartbeat
	// left behind expires after REDIS_LEASE_TTL.
	_, _ = s.runPipe(ctx, func(pipe redis.Pipeliner) { pipe.ZRem(ctx, s.liveKey(), s.cfg.ID) })
	return err
}

// release gives up the leases of partitions ps (releaseScript), in one
// round trip.
func (s *Store) release(ctx context.Context, ps []int) ([]redis.Cmder, error) {
	return s.runPipe(ctx, func(pipe redis.Pipeliner) {
		for _, p := range ps {
			k := s.keys(p)
			evalsha(ctx, pipe, releaseScript, []string{k.lease(), k.epoch()}, s.cfg.ID)
		}
	})
}
