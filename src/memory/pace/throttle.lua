-- A throttle at one domain, for every worker: back off and halve the rate (rule.rs).
-- KEYS[1] pace hash, KEYS[2] slot leases, KEYS[3] reserved starts (void after a throttle)
-- ARGV: retry_after_ms (-1: none), configured rate_milli, seed_learned, seed_backoff,
--       cap, hold_ms
-- Returns {in_flight, backoff_until_ms, learned_milli}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = {}
if redis.call('EXISTS', KEYS[1]) == 0 then
  h = {learned = tonumber(ARGV[3]), backoff = tonumber(ARGV[4]), clean = tonumber(ARGV[4])}
else
  local raw = redis.call('HGETALL', KEYS[1])
  for i = 1, #raw, 2 do h[raw[i]] = tonumber(raw[i + 1]) end
end
local function get(k) return h[k] or 0 end

local wait = tonumber(ARGV[1])
if wait < 0 then wait = 1000 end
wait = math.min(wait, 3600000)
local configured = tonumber(ARGV[2])
local cap = math.max(tonumber(ARGV[5]), 1)
local hold = math.max(tonumber(ARGV[6]), 1)
local backoff = math.max(get('backoff'), now + wait)
local current = get('learned')
if current <= 0 then
  if configured > 0 then
    current = configured
  else
    current = math.max(math.floor(1000000 / hold) * cap, 1000)
  end
end
local ceiling = get('ceiling')
if configured > 0 then ceiling = configured else ceiling = math.max(ceiling, current) end
local learned = math.max(math.floor(current / 2), 10)
redis.call('HSET', KEYS[1], 'backoff', backoff, 'learned', learned, 'ceiling', ceiling,
  'clean', backoff, 'tat', math.max(get('tat'), backoff), 'horizon', math.max(get('horizon'), backoff))
redis.call('PEXPIRE', KEYS[1], math.max(3600000, backoff - now))
redis.call('DEL', KEYS[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
return {redis.call('ZCARD', KEYS[2]), backoff, learned}
