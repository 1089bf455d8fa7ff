-- transfer-credit: the receiver's side of a points transfer, in one atomic step in the receiver's
-- slot: one lot per source expiry (lot ids "<transferId>-in-<n>", each keeping the expiry of the
-- sender's lots it came from), one earn op (bizType transfer_in, op id "<transferId>-in", bizId =
-- the transfer id) in the outbox and in the receiver's idempotency record for the transfer, so a
-- second credit of the same transfer replays instead of paying again. Not an earn by rule: never
-- multiplied, and it does not count toward the receiver's tier (lt 0); the script refuses a
-- multiplier spec that would do either.
--
-- KEYS[1] acct  KEYS[2] lotz  KEYS[3] loth  KEYS[4] idempotency record of (receiver, transfer)
-- KEYS[5] outbox  KEYS[6] expiry index of the partition
-- ARGV[1] transfer JSON, as lua/transfer-debit-8.lua recorded it
--         {id, from, to, toUsername, amount, parts = {{expiresAt, points}, ...}, at, day, note?}
-- ARGV[2] request hash  ARGV[3] record TTL s  ARGV[4] now override ms ('' = Redis TIME)
-- ARGV[5] key hash  ARGV[6] multipliers JSON (lua/includes/credit.lua; applyTier 0, campaign
--         1000, lifetime 0)  ARGV[7] receiver id (must be the transfer's `to`)
-- Returns {1, opJson, replayed 0|1} | {-1} not hydrated | {-2} record holds another request
--@include args
--@include now
--@include oprecord
--@include lots
--@include credit
local t = argJson(ARGV[1], 'transfer')
local reqHash = argStr(ARGV[2], 'requestHash')
local ttl = argPos(ARGV[3], 'ttl')
local nowArg = argNow(ARGV[4])
local keyHash = argStr(ARGV[5], 'keyHash')
local m = argMultipliers(ARGV[6])
local uid = argPos(ARGV[7], 'toUserId')
if m.applyTier == 1 or m.campaign ~= 1000 or m.lifetime ~= 0 then badArg('multipliers') end
if type(t.id) ~= 'string' or t.id == '' then badArg('transfer') end
argPos(t.from, 'transfer')
if argPos(t.to, 'transfer') ~= uid or t.from == uid then badArg('transfer') end
local amount = argPos(t.amount, 'transfer')
if type(t.parts) ~= 'table' or #t.parts == 0 then badArg('transfer') end
local total = 0
for _, p in ipairs(t.parts) do
  if type(p) ~= 'table' then badArg('transfer') end
  argInt(p[1], 'transfer')
  total = total + argPos(p[2], 'transfer')
end
if total ~= amount then badArg('transfer') end

local prior = replayOrConflict(KEYS[4], reqHash, nil)
if prior then return prior end
if redis.call('EXISTS', KEYS[1]) == 0 then return { -1 } end

-- every check passed: write
local now = nowMs(nowArg)
local points, tierBefore = creditAmount(KEYS[1], amount, m)
if points ~= amount then badArg('multipliers') end
local avail, tierAfter = 0, tierBefore
local newLots = {}
for n, p in ipairs(t.parts) do
  local lotId = t.id .. '-in-' .. n
  avail, tierAfter = creditLot(KEYS[1], KEYS[2], KEYS[3], KEYS[6], uid, lotId, p[2], p[1], tierBefore, m)
  newLots[n] = { lotId, p[2], p[1] }
end

local op = {
  opId = t.id .. '-in', kind = 'earn', userId = uid, delta = amount, balanceAfter = avail,
  available = avail - expiredPoints(KEYS[2], KEYS[3], now), bizType = 'transfer_in', bizId = t.id, at = now,
  h = reqHash, k = keyHash, base = amount, mult = 1000, lt = 0, tier = tierAfter, newLots = newLots, transfer = t,
}
local json = cjson.encode(op)
redis.call('XADD', KEYS[5], '*', 'o', json)
redis.call('SET', KEYS[4], json, 'EX', ttl)
return { 1, json, 0 }
