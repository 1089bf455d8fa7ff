-- charge: deducts points for a redemption, consuming live lots earliest-expiry first.
-- Expired-but-unswept lots are never spendable, however late the expire job is.
--
-- KEYS[1] acct  KEYS[2] lotz  KEYS[3] loth  KEYS[4] idempotency record of (member, key)
-- KEYS[5] op reference (member, op id) -> key hash, for lookups by id  KEYS[6] outbox
-- ARGV[1] opId (random, fresh per attempt)  ARGV[2] userId  ARGV[3] amount (>0)
-- ARGV[4] request hash  ARGV[5] record TTL s  ARGV[6] now override ms ('' = Redis TIME)
-- ARGV[7] reservation token  ARGV[8] extra fields JSON (goodsId, quantity, exchangeNo, bizType, bizId)
-- ARGV[9] key hash  ARGV[10] guard ('' the member acts: refused while frozen | 'system': a clawback)
-- Returns {1, opJson, replayed 0|1} | {-1} not hydrated | {-2} key reused
--         | {-4, spendable} insufficient points | {-40} member frozen | {-5} reservation already aborted by the sweeper
--@include args
--@include now
--@include oprecord
--@include lots
--@include risk
local opId = argStr(ARGV[1], 'opId')
local uid = argPos(ARGV[2], 'userId')
local amount = argPos(ARGV[3], 'amount')
local reqHash = argStr(ARGV[4], 'requestHash')
local ttl = argPos(ARGV[5], 'ttl')
local nowArg = argNow(ARGV[6])
local token = argStr(ARGV[7], 'token')
local op = argJson(ARGV[8], 'extra')
local keyHash = argStr(ARGV[9], 'keyHash')
local guarded = memberActs(ARGV[10])

local prior = replayOrConflict(KEYS[4], reqHash, token)
if prior then return prior end
if redis.call('EXISTS', KEYS[1]) == 0 then return { -1 } end
if guarded and isFrozen(KEYS[1]) then return { -40 } end

local now = nowMs(nowArg)
local avail = tonumber(redis.call('HGET', KEYS[1], 'avail') or '0')
local spendable = avail - expiredPoints(KEYS[2], KEYS[3], now)
if spendable < amount then return { -4, spendable } end

local touched = consumeLots(KEYS[2], KEYS[3], now, amount)
local after = redis.call('HINCRBY', KEYS[1], 'avail', -amount)

op.opId = opId
op.kind = 'spend'
op.userId = uid
op.delta = -amount
op.balanceAfter = after
op.available = spendable - amount
op.lots = touched
op.at = now
op.t = token
op.h = reqHash
op.k = keyHash
local json = cjson.encode(op)
redis.call('XADD', KEYS[6], '*', 'o', json)
redis.call('SET', KEYS[4], json, 'EX', ttl)
redis.call('SET', KEYS[5], keyHash, 'EX', ttl)
return { 1, json, 0 }
