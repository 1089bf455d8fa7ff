-- refund: gives a spend's points back (a cancelled or refunded order, a refunded redemption), once.
-- Each portion returns to the lot it was taken from while that lot's expiry is still ahead; a
-- portion whose lot expired meanwhile comes back as a new lot expiring `grace` from now. The op
-- (kind 'refund', bizType 'refund', bizId the spend's op id) does not count toward the tier.
--
-- KEYS[1] acct  KEYS[2] lotz  KEYS[3] loth  KEYS[4] idempotency record (member, refund key)
-- KEYS[5] outbox  KEYS[6] expidx
-- ARGV[1] opId  ARGV[2] userId  ARGV[3] portions JSON [[lotId, points, expiresAt], ...] (the spend's lots)
-- ARGV[4] now override ms ('' = Redis TIME)  ARGV[5] grace ms  ARGV[6] extra fields JSON (bizId: the
-- spend's op id, orderId ...)  ARGV[7] request hash  ARGV[8] record TTL s  ARGV[9] key hash
-- Returns {1, opJson, replayed 0|1} | {-1} not hydrated | {-2} key reused
--@include args
--@include now
--@include oprecord
--@include lots
--@include restore
local opId = argStr(ARGV[1], 'opId')
local uid = argPos(ARGV[2], 'userId')
local portions = argJson(ARGV[3], 'portions')
local nowArg = argNow(ARGV[4])
local grace = argPos(ARGV[5], 'graceMs')
local op = argJson(ARGV[6], 'extra')
local reqHash = argStr(ARGV[7], 'requestHash')
local ttl = argPos(ARGV[8], 'ttl')
local keyHash = argStr(ARGV[9], 'keyHash')

local total = 0
for _, p in ipairs(portions) do
  if type(p) ~= 'table' or type(p[1]) ~= 'string' or tonumber(p[2]) == nil or tonumber(p[3]) == nil then badArg('portions') end
  total = total + tonumber(p[2])
end
if total <= 0 then badArg('portions') end

local prior = replayOrConflict(KEYS[4], reqHash, nil)
if prior then return prior end
if redis.call('EXISTS', KEYS[1]) == 0 then return { -1 } end
local now = nowMs(nowArg)

local restored = restoreLots(KEYS[2], KEYS[3], KEYS[6], tostring(uid), portions, now, grace, opId)
local after = redis.call('HINCRBY', KEYS[1], 'avail', total)

op.opId = opId
op.kind = 'refund'
op.userId = uid
op.delta = total
op.balanceAfter = after
op.available = after - expiredPoints(KEYS[2], KEYS[3], now)
op.bizType = 'refund'
op.restored = restored
op.lt = 0
op.at = now
op.h = reqHash
op.k = keyHash
local json = cjson.encode(op)
redis.call('XADD', KEYS[5], '*', 'o', json)
redis.call('SET', KEYS[4], json, 'EX', ttl)
return { 1, json, 0 }
