-- Installs a count of a tenant's queued jobs taken after a snapshot (the rule of rule.rs,
-- Book::rebase); 0 when another recount overtook it or the book is not the one counted.
-- KEYS[1] the tenant's book; ARGV: generation, since (the snapshot's), queued
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(redis.call('HGET', KEYS[1], 'generation')) ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('HINCRBY', KEYS[1], 'since', 0 - tonumber(ARGV[2]))
redis.call('HINCRBY', KEYS[1], 'generation', 1)
redis.call('HSET', KEYS[1], 'base', ARGV[3], 'counted_at', now, 'counting_until', 0)
return 1
