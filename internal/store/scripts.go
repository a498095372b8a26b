package store

import "github.com/redis/go-redis/v9"

// script is a Lua script run by its SHA-1 (EVALSHA). Its source is kept for
// SCRIPT LOAD: go-redis' Script.Load on a pipeline records an empty hash
// (it reads the reply before the pipeline ran), so the Store loads the
// sources itself.
type script struct {
	src string
	*redis.Script
}

func newScript(src string) *script { return &script{src, redis.NewScript(src)} }

// appendScript stores a worker's partial of an open bucket under the
// worker's field, replacing the field's previous, smaller, value.
//
//	KEYS: closed mark, parts hash, pending zset, closed-up-to mark
//	ARGV: field id, blob, bucket start, retention seconds
//
// Returns 1 when stored, 0 when the bucket is closed (its own mark, or the
// partition's holder closed every bucket up to it or later, whether or not
// this partition had data in it): what the partial adds to the field's last
// stored value is late, and the caller counts it.
var appendScript = newScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local upto = redis.call('GET', KEYS[4])
if upto and tonumber(ARGV[3]) <= tonumber(upto) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[3])
return 1
`)

// fence is the start of every flush-side script: KEYS[1] is the
// partition's lease, ARGV[1] the caller's token. A caller whose lease
// expired or moved to another worker (its token is not the lease's) is
// refused with a FENCED error, before it writes anything.
const fence = `
local lv = redis.call('GET', KEYS[1])
if not lv or string.match(lv, '^(%d+) ') ~= ARGV[1] then
  return redis.error_reply('FENCED the partition lease is not held with this token')
end
`

// dueScript closes, for appends, every bucket of the partition up to the
// cutoff (the newest bucket whose deadline has passed), whether it has
// partials or not, and returns the starts of the buckets with partials up
// to it. So a partial for a bucket already delivered is refused as late in
// every partition, not only in those that had data in it.
//
//	KEYS: lease, closed-up-to mark, pending zset
//	ARGV: token, cutoff (bucket start)
var dueScript = newScript(fence + `
local upto = redis.call('GET', KEYS[2])
if not upto or tonumber(upto) < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[2])
end
return redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[2])
`)

// closeScript closes a bucket (later appends are refused), marks it as
// handed to the outlets by the caller's token, and returns the previous
// such mark ("" for none), the outlets that have the bucket, and its
// partials as id, blob, id, blob, … Closing again returns the same
// partials: nothing can be added once closed.
//
// The fourth element lists the series some worker's fallback sent (see
// fallbackScript), which the merge leaves out.
//
//	KEYS: lease, closed mark, parts hash, done set, sent mark, fallback hash
//	ARGV: token, retention seconds
var closeScript = newScript(fence + `
redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
local prev = redis.call('GET', KEYS[5]) or ''
redis.call('SET', KEYS[5], ARGV[1], 'EX', ARGV[2])
return {prev, redis.call('SMEMBERS', KEYS[4]), redis.call('HGETALL', KEYS[3]), redis.call('HVALS', KEYS[6])}
`)

// fallbackScript records, once Redis answers again, that a worker sent its
// own partial of an open (partition, bucket) itself while Redis was down
// (REDIS_FALLBACK_AFTER): its field is removed from the bucket's partials
// and the series it sent are listed, so that the flusher leaves them out of
// the merge and no series of the bucket is ever sent with a second,
// different value. Returns 1, or 0 when the bucket was already closed by
// its own mark, i.e. flushed (then Redis had sent those series before the
// fallback did: the caller counts the second value). The partition's
// closed-up-to mark is not a refusal here: it closes buckets to new
// partials as soon as they are due, before the holder flushes them (and
// a holder just back from the same outage holds its flushes for this
// record, holdFlushes), so a bucket below it without its own mark was not
// sent from Redis.
//
//	KEYS: closed mark, parts hash, pending zset, fallback hash
//	ARGV: field id, series list, bucket start, retention seconds
var fallbackScript = newScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[4], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[3])
return 1
`)

// totalsScript advances the running totals of a bucket's series once and
// records the result; called again for the same bucket (a resend) it returns
// the record without advancing anything. A field holds "start sum count
// last", last being the start of the series' newest bucket. Each first call
// also sweeps the next 100 fields of the hash (HSCAN, the cursor kept in the
// prune key) and deletes those whose last bucket is more than the idle age
// before this one, so that the hash of a partition holds only the series of
// the last idle age, however many one-off sources (run.1234) came and went.
//
//	KEYS: lease, totals hash, the bucket's record, prune cursor
//	ARGV: token, bucket start, record ttl seconds, idle age seconds,
//	      then per series: field, sum, count
//
// Returns {record, pruned}: one line per series, in argument order,
// "start sum count"; and the fields deleted.
var totalsScript = newScript(fence + `
local rec = redis.call('GET', KEYS[3])
if rec then return {rec, 0} end
local out = {}
for i = 5, #ARGV, 3 do
  local st, s, c = ARGV[2], 0, 0
  local cur = redis.call('HGET', KEYS[2], ARGV[i])
  if cur then
    local a, b, d = string.match(cur, '^(%S+) (%S+) (%S+)')
    if a then st, s, c = a, tonumber(b), tonumber(d) end
  end
  s = s + tonumber(ARGV[i+1])
  c = c + tonumber(ARGV[i+2])
  local v = st .. ' ' .. string.format('%.17g', s) .. ' ' .. string.format('%.17g', c)
  redis.call('HSET', KEYS[2], ARGV[i], v .. ' ' .. ARGV[2])
  out[#out+1] = v
end
local r = table.concat(out, '\n')
redis.call('SET', KEYS[3], r, 'EX', ARGV[3])
local limit = tonumber(ARGV[2]) - tonumber(ARGV[4])
local scan = redis.call('HSCAN', KEYS[2], redis.call('GET', KEYS[4]) or '0', 'COUNT', 100)
local pruned = 0
for i = 1, #scan[2], 2 do
  local last = string.match(scan[2][i+1], '^%S+ %S+ %S+ (%S+)$')
  if last and tonumber(last) < limit then
    redis.call('HDEL', KEYS[2], scan[2][i])
    pruned = pruned + 1
  end
end
redis.call('SET', KEYS[4], scan[1])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('EXPIRE', KEYS[4], ARGV[4])
return {r, pruned}
`)

// leaseScript takes a free lease or extends the caller's own, and returns
// its token (0 when another worker holds it). The lease holds "token id".
// A token is a fencing epoch: every take of a partition's lease gets a
// token larger than any before it (the epoch key, and never below Redis'
// clock in milliseconds, so that a Redis that lost its data cannot hand an
// old token out again), and every flush-side script refuses a caller whose
// token is not the lease's (see fence). A worker that retakes its own lapsed
// lease, which nobody took meanwhile (the epoch is still its token), keeps
// its token: nothing it did under it was fenced off. A renewal that timed
// out on the client may still have run on the server; the worker then
// finds its own id and goes on holding.
//
// When the epoch key is missing (Redis lost its data) the worker that held
// the lease until then keeps its token too, so that its deliveries in
// flight stay valid.
//
// A lease its holder gave up with releaseScript (every delivery of it
// settled and recorded) leaves the epoch negated: whoever takes it next
// gets its token negated too (-token), which says "taken from a clean
// release", and may flush at once instead of waiting LeaseSettle for a
// holder that might still be recording verdicts.
//
//	KEYS: lease, epoch
//	ARGV: holder id, ttl milliseconds, the caller's last token or 0, "1" if it holds the lease now
var leaseScript = newScript(`
local v = redis.call('GET', KEYS[1])
if v then
  local tok, id = string.match(v, '^(%d+) (.*)$')
  if id == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(tok)
  end
  return 0
end
local e = tonumber(redis.call('GET', KEYS[2]) or '0')
local clean = e < 0
if clean then e = -e end
local tok
if ARGV[3] ~= '0' and (tonumber(ARGV[3]) == e or (e == 0 and ARGV[4] == '1')) then
  tok = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  tok = math.max(e + 1, tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end
redis.call('SET', KEYS[2], string.format('%.0f', tok))
redis.call('SET', KEYS[1], string.format('%.0f', tok) .. ' ' .. ARGV[1], 'PX', ARGV[2])
if clean then return -tok end
return tok
`)

// liveScript renews the caller's heartbeat in the live-workers zset, drops
// the workers whose heartbeat expired (by Redis' clock, so that workers'
// clocks need not agree) and returns the live ids.
//
//	KEYS: live zset; ARGV: worker id, ttl milliseconds
var liveScript = newScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[2])), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call('ZRANGE', KEYS[1], 0, -1)
`)

// releaseScript deletes a lease only if the caller holds it, and marks
// the release clean (the epoch negated, see leaseScript) when the lease's
// token is still the epoch.
//
//	KEYS: lease, epoch; ARGV: holder id
var releaseScript = newScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local tok, id = string.match(v, '^(%d+) (.*)$')
if id ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if tonumber(redis.call('GET', KEYS[2]) or '0') == tonumber(tok) then
  redis.call('SET', KEYS[2], '-' .. tok)
end
return 1
`)

// verdictScript records the outlets that settled a bucket for good (they
// join its delivered set) and, when every outlet has, removes the bucket's
// partials and bookkeeping (its totals record too: no resend can follow
// once it left the pending set); the closed mark stays until it expires, so
// that a late partial is still refused.
//
//	KEYS: lease, parts, done set, pending zset, fed mark, totals record, sent mark, fallback hash
//	ARGV: token, bucket start, retention seconds, "1" to clean up or "0", outlets…
var verdictScript = newScript(fence + `
if #ARGV > 4 then
  redis.call('SADD', KEYS[3], unpack(ARGV, 5))
  redis.call('EXPIRE', KEYS[3], ARGV[3])
end
if ARGV[4] == '1' then
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
  redis.call('ZREM', KEYS[4], ARGV[2])
end
return 1
`)

// markerScript returns the data marker, setting it to the candidate when it
// is missing: a marker that changed since a worker last read it means Redis
// lost its data (a restart without persistence, FLUSHALL, a failover to a
// replica that had not caught up), and the worker writes its partials again.
//
//	KEYS: marker; ARGV: candidate
var markerScript = newScript(`
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
`)
