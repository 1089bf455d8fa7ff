-- reserve: first saga step of a redemption, in the goods slot. Checks the sale, the per-member
-- and daily limits and stock, prices the units, then holds them until charged (confirm) or
-- released. A hold belongs to (member, Idempotency-Key): concurrent attempts with one key share
-- it — one hold, one op id — so a burst of retries never holds more stock than the request itself.
-- Refused requests (sold out, limits, a changed price) stop here, touching nothing.
--
-- The unit price is computed here, in the step that takes the units (lua/includes/sale.lua):
-- round half up(list price × tier factor × campaign discount × stock factor), the last two for
-- goods with dynamic pricing only, the stock factor from the live stock before this request takes
-- any. The hold stores it; the charge takes exactly that.
--
-- KEYS[1] goods hash (stock, price, limit, daily, dyn, startsAt, endsAt, active)
-- KEYS[2] bought hash userId -> units  KEYS[3] reservations hash "<userId>:<keyHash>" -> JSON
-- KEYS[4] reservation deadlines zset "<userId>:<keyHash>" -> ms
-- KEYS[5] daily bought hash userId -> "<business day>:<units>" (written for goods with a daily limit)
-- ARGV[1] opId for a new hold  ARGV[2] userId  ARGV[3] quantity (>0)  ARGV[4] request hash
-- ARGV[5] timeout ms  ARGV[6] now override ms ('' = Redis TIME)  ARGV[7] token for a new hold
-- ARGV[8] key hash (the charge and the sweeper use the member's idempotency record)
-- ARGV[9] the member's tier price factor, per mille (1..1000; 1000 = list price)
-- ARGV[10] the goods campaign discount running for the item, per mille of the price paid
--          (1..1000; 1000 = none; the API picks it from its cache of goods campaigns)
-- ARGV[11] business-day offset ms (BUSINESS_TIMEZONE's UTC offset at the API's now): the daily
--          limit counts on day floor((now + offset) / 1 day)
-- ARGV[12] the unit price the client was shown ('' = no check): any other price refuses
-- Returns {1, token, unitPrice, fresh 1|0, opId} | {-2} key reused | {-10} no such goods
--         | {-11} sale not active | {-12, alreadyBought} limit exceeded | {-13, stock} sold out
--         | {-14, boughtToday} daily limit reached | {-15, unitPrice} price changed
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
local campaignPm = argRange(ARGV[10], 'campaignDiscount', 1, 1000)
local offset = argSigned(ARGV[11], 'dayOffsetMs')
local expected = nil
if ARGV[12] ~= '' then expected = argPos(ARGV[12], 'expectedPrice') end

local holdId = string.format('%d', uid) .. ':' .. keyHash
-- the same key again while its hold lives (a retry, a resent command) holds nothing more
local existing = redis.call('HGET', KEYS[3], holdId)
if existing then
  local r = cjson.decode(existing)
  if r.h ~= reqHash then return { -2 } end
  return { 1, r.t, r.p, 0, r.o }
end

local g = redis.call('HMGET', KEYS[1], 'stock', 'price', 'limit', 'startsAt', 'endsAt', 'active', 'daily', 'dyn')
if not g[1] then return { -10 } end
local now = nowMs(nowArg)
local refused, stock, day, today, daily = unitsRefused(g, KEYS[2], KEYS[5], uid, qty, now, offset)
if refused then return refused end
local price = priceOf(tonumber(g[2]), g[8], stock, tierPm, campaignPm)
if expected and expected ~= price then return { -15, price } end

redis.call('HINCRBY', KEYS[1], 'stock', -qty)
redis.call('HINCRBY', KEYS[2], uid, qty)
local hold = { u = uid, k = keyHash, o = opId, q = qty, p = price, t = token, h = reqHash }
if daily > 0 then
  redis.call('HSET', KEYS[5], uid, day .. ':' .. (today + qty))
  hold.dy = day
end
local deadline = now + timeout
hold.d = deadline
redis.call('HSET', KEYS[3], holdId, cjson.encode(hold))
redis.call('ZADD', KEYS[4], deadline, holdId)
return { 1, token, price, 1, opId }
