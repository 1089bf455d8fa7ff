-- balance: read-only view of a member's points at Redis time.
--
-- KEYS[1] acct  KEYS[2] lotz  KEYS[3] loth
-- ARGV[1] horizon ms (lots expiring within it are listed)  ARGV[2] now override ms ('' = TIME)
-- Returns {-1} not hydrated | {1, avail, earned, frozen, expiredUnswept, now, lotId, remaining, expiresAt, ...}
--@include args
--@include now
--@include lots
local horizon = argInt(ARGV[1], 'horizonMs')
local nowArg = argNow(ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then return { -1 } end
local now = nowMs(nowArg)
local a = redis.call('HMGET', KEYS[1], 'avail', 'earned', 'frozen')
local out = { 1, tonumber(a[1] or '0'), tonumber(a[2] or '0'), tonumber(a[3] or '0'),
  expiredPoints(KEYS[2], KEYS[3], now), now }
local soon = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, now + horizon, 'WITHSCORES')
for i = 1, #soon, 2 do
  out[#out + 1] = soon[i]
  out[#out + 1] = tonumber(redis.call('HGET', KEYS[3], soon[i]) or '0')
  out[#out + 1] = tonumber(soon[i + 1])
end
return out
