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
//	KEYS: closed mark, parts hash, pending zset
//	ARGV: field id, blob, bucket start, retention seconds
//
// Returns 1 when stored, 0 when the bucket is closed: what the partial adds
// to the field's last stored value is late, and the caller counts it.
var appendScript = newScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[3])
return 1
`)

// closeScript closes a bucket (later appends are refused) and returns its
// partials as id, blob, id, blob, … Closing again returns the same partials:
// nothing can be added once closed.
//
//	KEYS: closed mark, parts hash
//	ARGV: retention seconds
var closeScript = newScript(`
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
return redis.call('HGETALL', KEYS[2])
`)

// totalsScript advances the running totals of a bucket's series once and
// records the result; called again for the same bucket (a resend) it returns
// the record without advancing anything.
//
//	KEYS: totals hash, the bucket's record
//	ARGV: bucket start, record ttl seconds, totals ttl seconds,
//	      then per series: field, sum, count
//
// Returns one line per series, in argument order: "start sum count".
var totalsScript = newScript(`
local rec = redis.call('GET', KEYS[2])
if rec then return rec end
local out = {}
for i = 4, #ARGV, 3 do
  local st, s, c = ARGV[1], 0, 0
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if cur then
    local a, b, d = string.match(cur, '^(%S+) (%S+) (%S+)$')
    if a then st, s, c = a, tonumber(b), tonumber(d) end
  end
  s = s + tonumber(ARGV[i+1])
  c = c + tonumber(ARGV[i+2])
  local v = st .. ' ' .. string.format('%.17g', s) .. ' ' .. string.format('%.17g', c)
  redis.call('HSET', KEYS[1], ARGV[i], v)
  out[#out+1] = v
end
local r = table.concat(out, '\n')
redis.call('SET', KEYS[2], r, 'EX', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return r
`)

// leaseScript takes a free lease or extends the caller's own; it returns 1
// when the caller holds the lease afterwards. A renewal that timed out on
// the client may still have run on the server (a stalled Redis runs the
// commands queued on its sockets when it resumes): the worker then finds
// its own id and goes on holding, instead of waiting out the TTL.
//
//	KEYS: lease; ARGV: holder id, ttl milliseconds
var leaseScript = newScript(`
local v = redis.call('GET', KEYS[1])
if v == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

// releaseScript deletes a lease only if the caller holds it.
var releaseScript = newScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// cleanupScript removes a delivered bucket's partials and bookkeeping (its
// totals record too: no resend can follow once it left the pending set);
// the closed mark stays until it expires, so that a late partial is still
// refused.
//
//	KEYS: parts, done set, pending zset, fed mark, totals record; ARGV: bucket start
var cleanupScript = newScript(`
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4], KEYS[5])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
`)
