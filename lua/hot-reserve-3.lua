-- hot-reserve: first saga step of a redemption of a hot goods item, in one of its bucket slots
-- {g<id>:b<k>}. Checks the sale (the bucket's copy of the settings) and the bucket's stock, prices
-- the units, then holds them until charged (confirm) or released, as lua/reserve-5.lua does. The
-- per-member and daily limits are not checked here: they live in the member's slot and are checked
-- by the charge (lua/hot-charge-7.lua), which gets them from this reply. A hold belongs to
-- (member, Idempotency-Key): the same key again while its hold lives holds nothing more.
-- A bucket without the units answers {-13, stock, fresh}: the caller tries the item's other
-- buckets; `fresh` (holds made in the last second, not yet confirmed or released) tells it whether
-- units may come back here within moments (a hold whose charge is refused is released). Older
-- holds (an API that died mid-saga) are left to the sweeper and not waited for.
--
-- KEYS[1] bucket hash (stock, price, limit, daily, dyn, startsAt, endsAt, active)
-- KEYS[2] bucket reservations hash "<userId>:<keyHash>" -> JSON  KEYS[3] deadlines zset
-- ARGV[1] opId for a new hold  ARGV[2] userId  ARGV[3] quantity (>0)  ARGV[4] request hash
-- ARGV[5] timeout ms  ARGV[6] now override ms ('' = Redis TIME)  ARGV[7] token for a new hold
-- ARGV[8] key hash  ARGV[9] the member's tier price factor, per mille (1..1000)
-- ARGV[10] the unit price the client was shown ('' = no check)
-- Returns {1, token, unitPrice, fresh 1|0, opId, limit, daily} | {-2} key reused | {-10} no such bucket
--         | {-11} sale not active | {-12, 0} more than the limit in one request | {-13, stock, fresh} too few units
--         | {-14, 0} more than the daily limit in one request | {-15, unitPrice} price changed
--@include args
--@include now
--@include sale
local opId = argStr(ARGV[1], 'opId')
local uid = argPos(ARGV[2], 'userId')
local qty = argPos(ARGV[3], 'quantity')
local reqHash = argStr(ARGV[4], 'requestHash')
local timeout = argPos(ARGV[5], 'timeoutMs')
local nowArg = argNow(ARGV[6])
local token = argStr(ARGV[7], 'token')
local keyHash = argStr(ARGV[8], 'keyHash')
local tierPm = argRange(ARGV[9], 'priceFactor', 1, 1000)
local expected = nil
if ARGV[10] ~= '' then expected = argPos(ARGV[10], 'expectedPrice') end

local g = redis.call('HMGET', KEYS[1], 'stock', 'price', 'limit', 'startsAt', 'endsAt', 'active', 'daily', 'dyn')
local limit = tonumber(g[3] or '0')
local daily = tonumber(g[7] or '0')
local holdId = string.format('%d', uid) .. ':' .. keyHash
local existing = redis.call('HGET', KEYS[2], holdId)
if existing then
  local r = cjson.decode(existing)
  if r.h ~= reqHash then return { -2 } end
  return { 1, r.t, r.p, 0, r.o, limit, daily }
end

if not g[1] then return { -10 } end
local now = nowMs(nowArg)
if not saleOpen(g[6], g[4], g[5], now) then return { -11 } end
if limit > 0 and qty > limit then return { -12, 0 } end
if daily > 0 and qty > daily then return { -14, 0 } end
local stock = tonumber(g[1])
if stock < qty then return { -13, stock, redis.call('ZCOUNT', KEYS[3], '(' .. (now + timeout - 1000), '+inf') } end
local price = priceOf(tonumber(g[2]), g[8], stock, tierPm, 1000)
if expected and expected ~= price then return { -15, price } end

redis.call('HINCRBY', KEYS[1], 'stock', -qty)
local deadline = now + timeout
local hold = { u = uid, k = keyHash, o = opId, q = qty, p = price, t = token, h = reqHash, d = deadline }
redis.call('HSET', KEYS[2], holdId, cjson.encode(hold))
redis.call('ZADD', KEYS[3], deadline, holdId)
return { 1, token, price, 1, opId, limit, daily }
