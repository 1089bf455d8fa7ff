-- charge: deducts points for a redemption, consuming live lots earliest-expiry first.
-- Expired-but-unswept lots are never spendable, however late the expire job is.
--
-- KEYS[1] acct  KEYS[2] lotz  KEYS[3] loth  KEYS[4] op record  KEYS[5] outbox
-- ARGV[1] opId  ARGV[2] userId  ARGV[3] amount (>0)  ARGV[4] request hash
-- ARGV[5] op record TTL s  ARGV[6] now override ms ('' = Redis TIME)
-- ARGV[7] reservation token  ARGV[8] extra fields JSON (goodsId, quantity, exchangeNo, bizType, bizId)
-- Returns {1, opJson, replayed 0|1} | {-1} not hydrated | {-2} key reused
--         | {-4, spendable} insufficient points | {-5} reservation already aborted by the sweeper
--@include now
--@include oprecord
--@include lots
local prior = replayOrConflict(KEYS[4], ARGV[4], ARGV[7])
if prior then return prior end
if redis.call('EXISTS', KEYS[1]) == 0 then return { -1 } end

local now = nowMs(ARGV[6])
local amount = tonumber(ARGV[3])
local avail = tonumber(redis.call('HGET', KEYS[1], 'avail') or '0')
local spendable = avail - expiredPoints(KEYS[2], KEYS[3], now)
if spendable < amount then return { -4, spendable } end

local touched = consumeLots(KEYS[2], KEYS[3], now, amount)
local after = redis.call('HINCRBY', KEYS[1], 'avail', -amount)

local op = cjson.decode(ARGV[8])
op.opId = ARGV[1]
op.kind = 'spend'
op.userId = tonumber(ARGV[2])
op.delta = -amount
op.balanceAfter = after
op.available = spendable - amount
op.lots = touched
op.at = now
op.t = ARGV[7]
op.h = ARGV[4]
local json = cjson.encode(op)
redis.call('XADD', KEYS[5], '*', 'o', json)
redis.call('SET', KEYS[4], json, 'EX', tonumber(ARGV[5]))
return { 1, json, 0 }
