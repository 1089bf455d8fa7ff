-- hold: freezes points for a pending payment or an integrator's hold. The points leave `avail`
-- (they cannot be spent) for `frozen`, taken from live lots earliest-expiry first; the hold
-- remembers which portions it took, so capture spends exactly them and release gives them back.
-- The op (kind 'freeze', delta 0: the member still owns the points) records the hold.
--
-- KEYS[1] acct  KEYS[2] lotz  KEYS[3] loth  KEYS[4] hold record  KEYS[5] outbox
-- ARGV[1] opId  ARGV[2] userId  ARGV[3] amount (>0)  ARGV[4] holdId  ARGV[5] bizType  ARGV[6] bizId
-- ARGV[7] now override ms ('' = Redis TIME)  ARGV[8] expires at ms (0 = no expiry)
-- ARGV[9] extra fields JSON merged into the op  ARGV[10] request hash
-- ARGV[11] guard ('' the member acts (an order): refused while frozen | 'system': an integrator's hold)
-- Returns {1, holdJson, replayed 0|1} | {-1} not hydrated | {-2} the hold id taken by another request
--         | {-4, spendable} insufficient points | {-40} member frozen
--@include args
--@include now
--@include lots
--@include risk
local opId = argStr(ARGV[1], 'opId')
local uid = argPos(ARGV[2], 'userId')
local amount = argPos(ARGV[3], 'amount')
local holdId = argStr(ARGV[4], 'holdId')
local bizType = argStr(ARGV[5], 'bizType')
local nowArg = argNow(ARGV[7])
local expires = argInt(ARGV[8], 'expiresAt')
local op = argJson(ARGV[9], 'extra')
local reqHash = argStr(ARGV[10], 'requestHash')
local guarded = memberActs(ARGV[11])

local existing = redis.call('GET', KEYS[4])
if existing then
  if cjson.decode(existing).h ~= reqHash then return { -2 } end
  return { 1, existing, 1 }
end
if redis.call('EXISTS', KEYS[1]) == 0 then return { -1 } end
if guarded and isFrozen(KEYS[1]) then return { -40 } end
local now = nowMs(nowArg)
local avail = tonumber(redis.call('HGET', KEYS[1], 'avail') or '0')
local expired, firstLive = expiredAndFirstLive(KEYS[2], KEYS[3], now)
local spendable = avail - expired
if spendable < amount then return { -4, spendable } end

local taken = consumeLots(KEYS[2], KEYS[3], now, amount, firstLive)
local after = redis.call('HINCRBY', KEYS[1], 'avail', -amount)
local frozen = redis.call('HINCRBY', KEYS[1], 'frozen', amount)
local hold = cjson.encode({
  id = holdId, userId = uid, amount = amount, lots = taken, state = 'frozen', at = now, expiresAt = expires,
  bizType = bizType, bizId = ARGV[6], h = reqHash, freezeOp = opId,
})
redis.call('SET', KEYS[4], hold)

op.opId = opId
op.kind = 'freeze'
op.userId = uid
op.delta = 0
op.balanceAfter = after
op.available = spendable - amount
op.frozen = frozen
op.bizType = bizType
op.bizId = ARGV[6]
op.holdId = holdId
op.amount = amount
op.lots = taken
op.holdExpiresAt = expires
op.h = reqHash
op.at = now
redis.call('XADD', KEYS[5], '*', 'o', cjson.encode(op))
return { 1, hold, 0 }
