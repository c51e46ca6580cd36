-- What the writers of admissions report, for several admissions at once (the rule of
-- rule.rs, Book::settle); each tenant's counters are changed once per call.
-- KEYS: per admission, its tenant's book and its admissions in flight
-- ARGV: keep_ms, then per admission: id, jobs, committed (1 or 0)
local keep = tonumber(ARGV[1])
local changes, order = {}, {}
for i = 1, #KEYS / 2 do
  local book, flight = KEYS[2 * i - 1], KEYS[2 * i]
  local id, jobs, committed = ARGV[3 * i - 1], tonumber(ARGV[3 * i]), ARGV[3 * i + 1]
  local c = changes[book]
  if c == nil then
    c = {book = book, flying = 0, since = 0, committed = false}
    changes[book] = c
    table.insert(order, c)
  end
  if redis.call('ZREM', flight, id .. ':' .. jobs) == 1 then
    c.flying = c.flying - jobs
  end
  -- Counted even when the admission expired or the book was lost: twice is safe, never is not.
  if committed == '1' then
    c.since = c.since + jobs
    c.committed = true
  end
end
for _, c in ipairs(order) do
  if c.flying ~= 0 then redis.call('HINCRBY', c.book, 'flying', c.flying) end
  if c.committed then
    redis.call('HINCRBY', c.book, 'since', c.since)
    redis.call('PEXPIRE', c.book, keep)
  end
end
return 1
