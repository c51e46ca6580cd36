-- Admissions of tenants' submissions, for every API process at once, several per call (those
-- that arrived together), in order: the rule of rule.rs (Book::admit).
-- KEYS: per admission, its tenant's book (hash) and its admissions in flight (zset:
-- "id:jobs" -> expiry ms)
-- ARGV: ttl_ms, recount_ms, counting_lease_ms, keep_ms, then per admission: id, jobs,
-- max_queued, submit_rate
-- Returns, per admission, {verdict, recount, generation, since, wait_ms}, flattened: verdict
-- 1 admitted, 2 over the queued cap, 3 over the rate, 4 uncounted; recount 1 when this
-- caller is to count again, from the snapshot (generation, since).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl, recount_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
local lease, keep = tonumber(ARGV[3]), tonumber(ARGV[4])

local function admit(book, flight, admission, jobs, max_queued, rate)
  -- A new book's generation is its creation time, so a recount begun on a book that was
  -- lost since (a flush) cannot be installed on the new one.
  redis.call('HSETNX', book, 'generation', now)
  redis.call('PEXPIRE', book, keep)

  -- Admissions whose writer never reported (its process died) stop counting at their expiry.
  local expired = redis.call('ZRANGEBYSCORE', flight, '-inf', now)
  if #expired > 0 then
    local gone = 0
    for _, member in ipairs(expired) do
      gone = gone + tonumber(string.match(member, ':(%d+)$'))
    end
    redis.call('ZREMRANGEBYSCORE', flight, '-inf', now)
    redis.call('HINCRBY', book, 'flying', 0 - gone)
  end

  local b = redis.call('HMGET', book, 'base', 'since', 'flying', 'generation', 'counted_at',
    'counting_until', 'tokens_milli', 'filled_at')
  local base = tonumber(b[1])
  local since, flying = tonumber(b[2]) or 0, tonumber(b[3]) or 0
  local generation = tonumber(b[4])
  local counted_at, counting_until = tonumber(b[5]) or 0, tonumber(b[6]) or 0

  local recount = 0
  if (base == nil or now - counted_at >= recount_ms) and counting_until <= now then
    redis.call('HSET', book, 'counting_until', now + lease)
    recount = 1
  end
  local function answer(verdict, wait)
    return {verdict, recount, generation, since, wait}
  end
  if base == nil then return answer(4, 0) end
  if base + since + flying + jobs > max_queued then return answer(2, 0) end

  local full = math.max(rate, 1) * 1000
  local tokens = tonumber(b[7])
  if tokens == nil then
    tokens = full
  else
    local filled = tonumber(b[8]) or now
    tokens = math.min(full, tokens + math.max(now - filled, 0) * rate)
  end
  if rate == 0 or tokens < 1000 then
    redis.call('HSET', book, 'tokens_milli', tokens, 'filled_at', now)
    local wait = 1000
    if rate > 0 then wait = math.floor((1000 - tokens + rate - 1) / rate) end
    return answer(3, wait)
  end
  redis.call('HSET', book, 'tokens_milli', tokens - jobs * 1000, 'filled_at', now)
  redis.call('HINCRBY', book, 'flying', jobs)
  redis.call('ZADD', flight, now + ttl, admission .. ':' .. jobs)
  redis.call('PEXPIRE', flight, keep)
  return answer(1, 0)
end

local answers = {}
for i = 1, #KEYS / 2 do
  local a = 4 + (i - 1) * 4
  local one = admit(KEYS[2 * i - 1], KEYS[2 * i], ARGV[a + 1], tonumber(ARGV[a + 2]),
    tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]))
  for _, v in ipairs(one) do table.insert(answers, v) end
end
return answers
