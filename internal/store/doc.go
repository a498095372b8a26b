// Package store keeps the aggregation state of every worker of a deployment
// (one app, or many in multi-app mode) in Redis, so that restarts and
// several workers lose nothing and each bucket is sent once.
//
// Every worker keeps aggregating in memory (nothing here is on the per-line
// path). Every hand-over interval, and at shutdown, it takes the partial
// states of its open buckets out of the aggregator and writes them to Redis
// (Handover), split into partitions by a hash of (app, name, source). A
// write is idempotent: each worker's partial for a partition-bucket is one
// hash field, overwritten (HSET) with a superset of what it held, through a
// Lua script that refuses a partial for a bucket already closed, so that no
// read-modify-write race can lose or double a partial.
//
// Exactly one worker at a time holds the lease of a partition (a Lua
// script, renewed on a goroutine of its own) and flushes its buckets once
// their end plus the grace has passed (Run). With Config.Balance
// (REDIS_BALANCE, on by default) the leases are spread evenly over the live
// workers, each flushing its share; without it the first worker usually
// takes every partition. A lease carries a fencing
// token, an epoch that only grows: every flush-side script checks it and
// refuses a holder whose lease lapsed or moved, and a worker that cannot
// renew stops delivering (aggregate.Bucket.Valid) before another can take
// over. A Lua script closes the bucket and returns its partials, which are
// merged in a fixed order (so that a resend after a crash carries identical
// values); the running totals of the partition's series are advanced once per
// bucket by another script (recorded, so a resend reuses them) and handed to
// the outlets in aggregate.Series.Totals. The partials are deleted only when
// every outlet has settled the bucket (aggregate.Bucket.Done); a per-outlet
// delivered set lets a resend skip outlets that already have it. Every merged
// bucket is also appended to a capped stream that every worker reads (Feed),
// so that each worker's live view sees the whole app.
//
// Logplex Frame-Ids are shared too (FrameSeen: SET NX EX per id).
//
// In multi-app mode (DRAIN_SECRET) the app is part of every series' identity
// here: (app, name, source) in the partials (aggregate.State.App, encoded as
// State version 2), the partition hash, the running totals and the fallback
// records, and Frame-Ids are per app. Series without an app are stored
// exactly as before multi-app mode existed, so a rolling upgrade mixes old
// and new workers safely.
//
// A Redis error is never a verdict: whatever the reason (Stats.Errors, by
// Reason*), the data is kept and the step retried. Redis losing its data is
// found through a marker key and repaired by rewriting the open partials and
// the Frame-Ids this worker took;
// a worker whose partials Redis refused (out of memory) holds the flushers
// back; a fallback's series are left out of the merged bucket. See
// docs/shared-state.md for the guarantee per fault.
//
// The client is github.com/redis/go-redis/v9 rather than rueidis: it is the
// Redis project's reference Go client, its Script helper runs EVALSHA with an
// EVAL fallback, ParseURL takes Heroku's redis:// and rediss:// URLs as they
// are, and nothing here is latency-bound enough (a few pipelined round trips
// per worker per second) to want rueidis' auto-pipelining or client-side
// caching. Its own retries are off (MaxRetries -1): a command whose reply was
// lost may have run, so only the store retries, whole steps. See
// docs/shared-state.md for the key layout.
package store
