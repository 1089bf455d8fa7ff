-- hold-settle: ends a hold, once. Capture spends `capture` points of it (the earliest-expiring
-- portions it took; a spend op, kind 'spend') and gives the rest back; release gives all of it
-- back (an op of kind 'unfreeze', delta 0). Points given back return to the lots they came from,
-- or, where a lot expired meanwhile, to a new lot expiring `grace` from now.
--
-- KEYS[1] acct  KEYS[2] lotz  KEYS[3] loth  KEYS[4] hold record  KEYS[5] outbox  KEYS[6] expidx
-- ARGV[1] 'capture' | 'release'  ARGV[2] opId  ARGV[3] userId  ARGV[4] points to capture (capture
-- only: 1..hold amount)  ARGV[5] now override ms  ARGV[6] grace ms  ARGV[7] extra fields JSON
-- ARGV[8] record TTL s (how long the settled hold answers replays)
-- Returns {1, holdJson, replayed 0|1} | {-7} no such hold | {-8, state} already settled the other way
--         | {-9} capture of a hold past its expiry (it is released instead)
--@include args
--@include now
--@include lots
--@include restore
local mode = ARGV[1]
if mode ~= 'capture' and mode ~= 'release' then badArg('mode') end
local opId = argStr(ARGV[2], 'opId')
local uid = argPos(ARGV[3], 'userId')
local capture = 0
if mode == 'capture' then capture = argPos(ARGV[4], 'capture') end
local nowArg = argNow(ARGV[5])
local grace = argPos(ARGV[6], 'graceMs')
local op = argJson(ARGV[7], 'extra')
local ttl = argPos(ARGV[8], 'ttl')

local raw = redis.call('GET', KEYS[4])
if not raw then return { -7 } end
local hold = cjson.decode(raw)
if hold.state == 'aborted' then return { -7 } end -- a tombstone: this hold was never made
if hold.state ~= 'frozen' then
  if (mode == 'capture') == (hold.state == 'captured') then return { 1, raw, 1 } end
  return { -8, hold.state }
end
if capture > hold.amount then badArg('capture') end
if redis.call('EXISTS', KEYS[1]) == 0 then return { -1 } end
local now = nowMs(nowArg)
local holdExpiry = tonumber(hold.expiresAt or 0)
if mode == 'capture' and holdExpiry > 0 and now >= holdExpiry then return { -9 } end

-- split the portions: the first `capture` points are spent, the rest go back
local spent, back, need = {}, {}, capture
for _, p in ipairs(hold.lots) do
  local id, amt, exp = p[1], tonumber(p[2]), tonumber(p[3])
  local take = math.min(amt, need)
  if take > 0 then spent[#spent + 1] = { id, take, exp } end
  if amt - take > 0 then back[#back + 1] = { id, amt - take, exp } end
  need = need - take
end
local restored = restoreLots(KEYS[2], KEYS[3], KEYS[6], tostring(uid), back, now, grace, opId)
local returned = hold.amount - capture
local after = redis.call('HINCRBY', KEYS[1], 'avail', returned)
local frozen = redis.call('HINCRBY', KEYS[1], 'frozen', -hold.amount)

hold.state = mode == 'capture' and 'captured' or 'released'
hold.captured = capture
hold.settleOp = opId
hold.settledAt = now
local json = cjson.encode(hold)
redis.call('SET', KEYS[4], json, 'EX', ttl)

op.opId = opId
op.kind = mode == 'capture' and 'spend' or 'unfreeze'
op.userId = uid
op.delta = 0
if capture > 0 then op.delta = -capture end
op.balanceAfter = after
op.available = after - expiredPoints(KEYS[2], KEYS[3], now)
op.frozen = frozen
op.bizType = op.bizType or hold.bizType
op.bizId = op.bizId or hold.bizId
op.holdId = hold.id
op.amount = hold.amount
op.lots = spent
op.restored = restored
op.at = now
redis.call('XADD', KEYS[5], '*', 'o', cjson.encode(op))
return { 1, json, 0 }
