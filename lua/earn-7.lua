-- earn: credits points to a member as a new lot, atomically with caps, outbox and op record.
-- Used for rule earns (with daily caps) and admin grants (caps 0 = none).
--
-- KEYS[1] acct      hash  avail, earned
-- KEYS[2] lotz      zset  lotId -> expiresAt
-- KEYS[3] loth      hash  lotId -> remaining
-- KEYS[4] op        string op record (idempotency)
-- KEYS[5] cap       hash  day, n, pts (daily counters for this member and action)
-- KEYS[6] outbox    stream of the member's partition
-- KEYS[7] expidx    zset  userId -> earliest lot expiry of the partition (the expire job's index)
-- ARGV[1] opId  ARGV[2] userId  ARGV[3] points (>0)  ARGV[4] bizType  ARGV[5] bizId
-- ARGV[6] capCount (0 = no cap)  ARGV[7] capPoints (0 = no cap)  ARGV[8] lot lifetime ms
-- ARGV[9] request hash  ARGV[10] op record TTL s  ARGV[11] now override ms ('' = Redis TIME)
-- ARGV[12] extra fields JSON merged into the op (actor, reason, ...)
-- Returns {1, opJson, replayed 0|1} | {-1} not hydrated | {-2} key reused with another body
--         | {-3, countToday, pointsToday} daily limit reached
--@include now
--@include oprecord
--@include lots
local prior = replayOrConflict(KEYS[4], ARGV[9], nil)
if prior then return prior end
if redis.call('EXISTS', KEYS[1]) == 0 then return { -1 } end

local now = nowMs(ARGV[11])
local points = tonumber(ARGV[3])
local capCount = tonumber(ARGV[6])
local capPoints = tonumber(ARGV[7])
local day = math.floor(now / 86400000)
local n, pts = 0, 0
if capCount > 0 or capPoints > 0 then
  local c = redis.call('HMGET', KEYS[5], 'day', 'n', 'pts')
  if tonumber(c[1]) == day then
    n, pts = tonumber(c[2] or '0'), tonumber(c[3] or '0')
  end
  if (capCount > 0 and n + 1 > capCount) or (capPoints > 0 and pts + points > capPoints) then
    return { -3, n, pts }
  end
end

-- every check passed: write
if capCount > 0 or capPoints > 0 then
  redis.call('HSET', KEYS[5], 'day', day, 'n', n + 1, 'pts', pts + points)
  redis.call('PEXPIRE', KEYS[5], 172800000)
end
local expiresAt = now + tonumber(ARGV[8])
redis.call('ZADD', KEYS[2], expiresAt, ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], points)
redis.call('ZADD', KEYS[7], 'LT', expiresAt, ARGV[2])
local avail = redis.call('HINCRBY', KEYS[1], 'avail', points)
redis.call('HINCRBY', KEYS[1], 'earned', points)

local op = cjson.decode(ARGV[12])
op.opId = ARGV[1]
op.kind = 'earn'
op.userId = tonumber(ARGV[2])
op.delta = points
op.balanceAfter = avail
op.available = avail - expiredPoints(KEYS[2], KEYS[3], now)
op.bizType = ARGV[4]
op.bizId = ARGV[5]
op.at = now
op.expiresAt = expiresAt
op.h = ARGV[9]
local json = cjson.encode(op)
redis.call('XADD', KEYS[6], '*', 'o', json)
redis.call('SET', KEYS[4], json, 'EX', tonumber(ARGV[10]))
return { 1, json, 0 }
