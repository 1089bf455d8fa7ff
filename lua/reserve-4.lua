-- reserve: first saga step of a redemption, in the goods slot. Checks the sale, the per-user
-- limit and stock, then holds the units until charged (confirm) or released. A hold belongs to
-- (member, Idempotency-Key): concurrent attempts with one key share it — one hold, one op id —
-- so a burst of retries never holds more stock than the request itself.
-- Sold-out requests stop here, touching nothing.
--
-- KEYS[1] goods hash (stock, price, limit, startsAt, endsAt, active)
-- KEYS[2] bought hash userId -> units  KEYS[3] reservations hash "<userId>:<keyHash>" -> JSON
-- KEYS[4] reservation deadlines zset "<userId>:<keyHash>" -> ms
-- ARGV[1] opId for a new hold  ARGV[2] userId  ARGV[3] quantity (>0)  ARGV[4] request hash
-- ARGV[5] timeout ms  ARGV[6] now override ms ('' = Redis TIME)  ARGV[7] token for a new hold
-- ARGV[8] key hash (the charge and the sweeper use the member's idempotency record)
-- ARGV[9] the member's tier price factor, per mille (1000 = list price): the unit price is the
--         list price × factor, rounded half up, at least 1 — computed here, in the step that
--         reserves, and charged as such
-- Returns {1, token, unitPrice, fresh 1|0, opId} | {-2} key reused | {-10} no such goods
--         | {-11} sale not active | {-12, alreadyBought} limit exceeded | {-13, stock} sold out
--@include args
--@include now
local opId = argStr(ARGV[1], 'opId')
local uid = argPos(ARGV[2], 'userId')
local qty = argPos(ARGV[3], 'quantity')
local reqHash = argStr(ARGV[4], 'requestHash')
local timeout = argPos(ARGV[5], 'timeoutMs')
local nowArg = argNow(ARGV[6])
local token = argStr(ARGV[7], 'token')
local keyHash = argStr(ARGV[8], 'keyHash')
local factor = argPos(ARGV[9], 'priceFactor')

local holdId = string.format('%d', uid) .. ':' .. keyHash
-- the same key again while its hold lives (a retry, a resent command) holds nothing more
local existing = redis.call('HGET', KEYS[3], holdId)
if existing then
  local r = cjson.decode(existing)
  if r.h ~= reqHash then return { -2 } end
  return { 1, r.t, r.p, 0, r.o }
end

local g = redis.call('HMGET', KEYS[1], 'stock', 'price', 'limit', 'startsAt', 'endsAt', 'active')
if not g[1] then return { -10 } end
local now = nowMs(nowArg)
local startsAt, endsAt = tonumber(g[4] or '0'), tonumber(g[5] or '0')
if g[6] ~= '1' or (startsAt > 0 and now < startsAt) or (endsAt > 0 and now >= endsAt) then
  return { -11 }
end
local limit = tonumber(g[3] or '0')
local bought = tonumber(redis.call('HGET', KEYS[2], uid) or '0')
if limit > 0 and bought + qty > limit then return { -12, bought } end
local stock = tonumber(g[1])
if stock < qty then return { -13, stock } end

local price = math.max(1, math.floor(tonumber(g[2]) * factor / 1000 + 0.5))
redis.call('HINCRBY', KEYS[1], 'stock', -qty)
redis.call('HINCRBY', KEYS[2], uid, qty)
local deadline = now + timeout
redis.call('HSET', KEYS[3], holdId, cjson.encode({
  u = uid, k = keyHash, o = opId, q = qty, p = price, t = token, h = reqHash, d = deadline,
}))
redis.call('ZADD', KEYS[4], deadline, holdId)
return { 1, token, price, 1, opId }
