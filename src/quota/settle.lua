-- What the writers of admissions report, for several admissions at once (the rule of
-- rule.rs, Book::settle).
-- KEYS: per admission, its tenant's book and its admissions in flight
-- ARGV: keep_ms, then per admission: id, jobs, committed (1 or 0)
local keep = tonumber(ARGV[1])
for i = 1, #KEYS / 2 do
  local book, flight = KEYS[2 * i - 1], KEYS[2 * i]
  local id, jobs, committed = ARGV[3 * i - 1], tonumber(ARGV[3 * i]), ARGV[3 * i + 1]
  if redis.call('ZREM', flight, id .. ':' .. jobs) == 1 then
    redis.call('HINCRBY', book, 'flying', 0 - jobs)
  end
  -- Counted even when the admission expired or the book was lost: twice is safe, never is not.
  if committed == '1' then
    redis.call('HINCRBY', book, 'since', jobs)
    redis.call('PEXPIRE', book, keep)
  end
end
return 1
