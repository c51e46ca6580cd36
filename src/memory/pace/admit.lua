-- Admission of one job to one domain, atomically for every worker: the rule of rule.rs.
-- KEYS[1] pace hash, KEYS[2] slot leases (zset: job -> lease end, ms),
-- KEYS[3] reserved starts (hash: job -> ms)
-- ARGV: job, lease_ms, cap, rate_milli, burst, min_delay_ms, hold_ms, seed_learned, seed_backoff
-- Returns {1, 0, ''} when admitted, {2, 0, ''} when the job held a slot already,
-- {0, wait_ms, reason} when deferred.
-- A domain with no rate, no backoff and no learned pace has no pace hash at all: its
-- admissions only touch the slot leases.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local job = ARGV[1]
local lease = tonumber(ARGV[2])
local cap = math.max(tonumber(ARGV[3]), 1)
local configured = tonumber(ARGV[4])
local burst = tonumber(ARGV[5])
local min_delay = tonumber(ARGV[6])
local hold = math.max(tonumber(ARGV[7]), 1)
local keep = math.max(lease * 2, 3600000)

local h = {}
if redis.call('EXISTS', KEYS[1]) == 0 then
  local seed_learned, seed_backoff = tonumber(ARGV[8]), tonumber(ARGV[9])
  if seed_learned > 0 or seed_backoff > now then
    redis.call('HSET', KEYS[1], 'learned', seed_learned, 'backoff', seed_backoff, 'clean', seed_backoff)
    redis.call('PEXPIRE', KEYS[1], math.max(keep, seed_backoff - now))
    h = {learned = seed_learned, backoff = seed_backoff, clean = seed_backoff}
  end
else
  local raw = redis.call('HGETALL', KEYS[1])
  for i = 1, #raw, 2 do h[raw[i]] = tonumber(raw[i + 1]) end
end
local function get(k) return h[k] or 0 end

redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZSCORE', KEYS[2], job) then
  redis.call('ZADD', KEYS[2], now + lease, job)
  redis.call('PEXPIRE', KEYS[2], keep)
  return {2, 0, ''}
end

-- Additive increase after a clean period.
local learned = get('learned')
local ceiling = get('ceiling')
if learned > 0 and now - get('clean') >= 5000 then
  learned = learned + math.max(math.floor(ceiling / 10), 10)
  if learned >= ceiling then learned = 0 end
  redis.call('HSET', KEYS[1], 'learned', learned, 'clean', now)
end

local rate = configured
if configured == 0 then rate = learned elseif learned > 0 then rate = math.min(configured, learned) end
local interval = 0
if rate > 0 then interval = math.floor(1000000 / rate) end
interval = math.max(interval, min_delay)
local tolerance = burst * interval
local tat = get('tat')
local reservation = nil
if interval > 0 then reservation = tonumber(redis.call('HGET', KEYS[3], job)) end

local earliest, reason = nil, nil
if get('backoff') > now then
  earliest, reason = get('backoff'), 'backoff'
elseif redis.call('ZCARD', KEYS[2]) >= cap then
  earliest, reason = now + math.floor(hold / cap), 'cap'
elseif reservation then
  if reservation > now + 50 then return {0, math.max(reservation - now, 1), 'rate'} end
elseif interval > 0 and math.max(tat, now) - now > tolerance then
  local at = tat - tolerance
  redis.call('HSET', KEYS[1], 'tat', tat + interval)
  redis.call('PEXPIRE', KEYS[1], math.max(keep, get('backoff') - now))
  redis.call('HSET', KEYS[3], job, at)
  redis.call('PEXPIRE', KEYS[3], keep)
  return {0, math.max(at - now, 1), 'rate'}
end
if earliest then
  local spacing = math.max(interval, math.floor(hold / cap), 1)
  local horizon = get('horizon')
  local promise = earliest
  if horizon > now then promise = math.max(earliest, horizon + spacing) end
  redis.call('HSET', KEYS[1], 'horizon', promise)
  redis.call('PEXPIRE', KEYS[1], math.max(keep, get('backoff') - now))
  return {0, math.max(promise - now, 1), reason}
end

redis.call('ZADD', KEYS[2], now + lease, job)
redis.call('PEXPIRE', KEYS[2], keep)
if reservation then
  redis.call('HDEL', KEYS[3], job)
elseif interval > 0 then
  redis.call('HSET', KEYS[1], 'tat', math.max(tat, now) + interval)
  redis.call('PEXPIRE', KEYS[1], math.max(keep, get('backoff') - now))
end
return {1, 0, ''}
