package limits

import "github.com/redis/go-redis/v9"

// leaseRate takes up to ARGV[3] tokens from the fleet-wide GCRA bucket
// KEYS[1]. ARGV[1] is the emission interval T (µs per request), ARGV[2]
// the burst tolerance τ = burst·T (µs), ARGV[4] the time in µs (0: the
// Redis server's clock, which every instance shares). The stored value
// is the theoretical arrival time (TAT); a bucket at rest has TAT ≤ now
// and then holds burst tokens. It returns {granted, left, wait µs until
// the next token when none was granted}.
var leaseRate = redis.NewScript(`
local now = tonumber(ARGV[4])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local T = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local avail = math.floor((now + tau - tat) / T)
if avail < 0 then avail = 0 end
local grant = math.min(want, avail)
if grant > 0 then
  tat = tat + grant * T
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
local wait = 0
if grant == 0 then wait = math.ceil(tat + T - tau - now) end
return {grant, avail - grant, wait}
`)

// leaseQuota takes up to ARGV[2] requests of the quota ARGV[1] from the
// counter KEYS[1], after adding ARGV[4] requests admitted while Redis
// could not be reached; the counter expires at ARGV[3] (Unix seconds).
// It returns {granted, left}.
var leaseQuota = redis.NewScript(`
local owed = tonumber(ARGV[4])
local used
if owed > 0 then
  used = redis.call('INCRBY', KEYS[1], owed)
  redis.call('EXPIREAT', KEYS[1], ARGV[3])
else
  used = tonumber(redis.call('GET', KEYS[1]) or 0)
end
local avail = tonumber(ARGV[1]) - used
if avail < 0 then avail = 0 end
local grant = math.min(tonumber(ARGV[2]), avail)
if grant > 0 then
  redis.call('INCRBY', KEYS[1], grant)
  redis.call('EXPIREAT', KEYS[1], ARGV[3])
end
return {grant, avail - grant}
`)

// refundQuota gives back ARGV[1] leased requests that were not used,
// never taking the counter below zero.
var refundQuota = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local v = redis.call('DECRBY', KEYS[1], ARGV[1])
if v < 0 then redis.call('SET', KEYS[1], 0, 'KEEPTTL') end
return v
`)

// acquireSlot takes one of ARGV[2] concurrency slots for instance
// ARGV[1]. KEYS[1] counts requests in flight per instance, KEYS[2]
// holds each instance's lease (score: expiry in ms); leases that ran out
// (instances that died) are dropped first. ARGV[3] is the lease length
// in ms. It returns {1 if taken else 0, requests in flight}.
var acquireSlot = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, inst in ipairs(dead) do redis.call('HDEL', KEYS[1], inst) end
if #dead > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end
local total = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do total = total + tonumber(v) end
if total >= tonumber(ARGV[2]) then return {0, total} end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {1, total + 1}
`)

// releaseSlot gives back one slot of instance ARGV[1].
var releaseSlot = redis.NewScript(`
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return n
`)

// renewSlots extends the lease of instance ARGV[1] by ARGV[2] ms while
// it holds slots. It returns 0 when the instance's count was dropped
// meanwhile (its lease had run out), else 1.
var renewSlots = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
`)

// clearSlots drops every slot instance ARGV[1] holds; used once the
// instance has nothing in flight for the subject but Redis may still
// count some (a release that failed during an outage).
var clearSlots = redis.NewScript(`
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`)
