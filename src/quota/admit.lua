-- Admissions of tenants' submissions, for every API process at once, several per call (those
-- that arrived together), in order: the rule of rule.rs (Book::admit).
-- KEYS: per admission, its tenant's book (hash) and its admissions in flight (zset:
-- "id:jobs" -> expiry ms)
-- ARGV: ttl_ms, recount_ms, counting_lease_ms, keep_ms, then per admission: id, jobs,
-- max_queued, submit_rate
-- Returns, per admission, {verdict, recount, generation, since, wait_ms}, flattened: verdict
-- 1 admitted, 2 over the queued cap, 3 over the rate, 4 uncounted; recount 1 when this
-- caller is to count again, from the snapshot (generation, since).
--
-- Each tenant's book is read once per call and written once at its end, its admissions
-- decided one after another in between: a call of 64 admissions of one tenant costs Redis a
-- dozen commands, not ten per admission (the script was most of Redis's work under load).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl, recount_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
local lease, keep = tonumber(ARGV[3]), tonumber(ARGV[4])

-- A tenant's book as this call sees it, and what the call changed.
local books, touched = {}, {}

local function open(book, flight)
  local s = books[book]
  if s then return s end
  -- A new book's generation is its creation time, so a recount begun on a book that was
  -- lost since (a flush) cannot be installed on the new one.
  redis.call('HSETNX', book, 'generation', now)
  redis.call('PEXPIRE', book, keep)

  -- Admissions whose writer never reported (its process died) stop counting at their expiry.
  local gone = 0
  local expired = redis.call('ZRANGEBYSCORE', flight, '-inf', now)
  if #expired > 0 then
    for _, member in ipairs(expired) do
      gone = gone + tonumber(string.match(member, ':(%d+)$'))
    end
    redis.call('ZREMRANGEBYSCORE', flight, '-inf', now)
  end

  local b = redis.call('HMGET', book, 'base', 'since', 'flying', 'generation', 'counted_at',
    'counting_until', 'tokens_milli', 'filled_at')
  s = {
    book = book, flight = flight,
    base = tonumber(b[1]), since = tonumber(b[2]) or 0,
    flying = (tonumber(b[3]) or 0) - gone, flying_change = 0 - gone,
    generation = tonumber(b[4]),
    counted_at = tonumber(b[5]) or 0, counting_until = tonumber(b[6]) or 0,
    tokens = tonumber(b[7]), filled_at = tonumber(b[8]),
    counting = false, spent = false, members = {},
  }
  books[book] = s
  table.insert(touched, s)
  return s
end

local function admit(s, admission, jobs, max_queued, rate)
  local recount = 0
  if (s.base == nil or now - s.counted_at >= recount_ms) and s.counting_until <= now then
    s.counting_until = now + lease
    s.counting = true
    recount = 1
  end
  local function answer(verdict, wait)
    return {verdict, recount, s.generation, s.since, wait}
  end
  if s.base == nil then return answer(4, 0) end
  if s.base + s.since + s.flying + jobs > max_queued then return answer(2, 0) end

  local full = math.max(rate, 1) * 1000
  local tokens = s.tokens
  if tokens == nil then
    tokens = full
  else
    local filled = s.filled_at or now
    tokens = math.min(full, tokens + math.max(now - filled, 0) * rate)
  end
  s.filled_at, s.spent = now, true
  if rate == 0 or tokens < 1000 then
    s.tokens = tokens
    local wait = 1000
    if rate > 0 then wait = math.floor((1000 - tokens + rate - 1) / rate) end
    return answer(3, wait)
  end
  s.tokens = tokens - jobs * 1000
  s.flying = s.flying + jobs
  s.flying_change = s.flying_change + jobs
  table.insert(s.members, now + ttl)
  table.insert(s.members, admission .. ':' .. jobs)
  return answer(1, 0)
end

local answers = {}
for i = 1, #KEYS / 2 do
  local a = 4 + (i - 1) * 4
  local s = open(KEYS[2 * i - 1], KEYS[2 * i])
  local one = admit(s, ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]),
    tonumber(ARGV[a + 4]))
  for _, v in ipairs(one) do table.insert(answers, v) end
end

for _, s in ipairs(touched) do
  if s.counting then redis.call('HSET', s.book, 'counting_until', s.counting_until) end
  if s.spent then redis.call('HSET', s.book, 'tokens_milli', s.tokens, 'filled_at', s.filled_at) end
  if s.flying_change ~= 0 then redis.call('HINCRBY', s.book, 'flying', s.flying_change) end
  if #s.members > 0 then
    redis.call('ZADD', s.flight, unpack(s.members))
    redis.call('PEXPIRE', s.flight, keep)
  end
end
return answers
