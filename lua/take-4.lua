-- take: takes an order item's units from stock for good, in the goods slot — an order's stock
-- step (lua/reserve-5.lua is the redemption's, which holds units until its charge). Checks the sale,
-- the per-member and daily limits and stock, and prices the units like a reservation does
-- (lua/includes/sale.lua). The units taken are recorded under the order's id, so taking again
-- replays (a retried placement) and giving back (lua/give-back-5.lua) returns exactly them, once.
-- Reconcile counts the recorded units as sold (read at the same instant as the stock).
--
-- KEYS[1] goods hash  KEYS[2] bought hash userId -> units  KEYS[3] daily bought hash
-- KEYS[4] taken hash orderId -> JSON {u, q, p, dy}
-- ARGV[1] orderId  ARGV[2] userId  ARGV[3] quantity (>0)  ARGV[4] now override ms ('' = Redis TIME)
-- ARGV[5] tier price factor per mille (1..1000)  ARGV[6] goods campaign discount per mille (1..1000)
-- ARGV[7] business-day offset ms  ARGV[8] the unit price the client was shown ('' = no check)
-- Returns {1, unitPrice, fresh 1|0} | {-10} no such goods | {-11} sale not active
--         | {-12, alreadyBought} limit exceeded | {-13, stock} sold out | {-14, boughtToday} daily
--         limit reached | {-15, unitPrice} price changed
--@include args
--@include now
--@include sale
local orderId = argStr(ARGV[1], 'orderId')
local uid = argPos(ARGV[2], 'userId')
local qty = argPos(ARGV[3], 'quantity')
local nowArg = argNow(ARGV[4])
local tierPm = argRange(ARGV[5], 'priceFactor', 1, 1000)
local campaignPm = argRange(ARGV[6], 'campaignDiscount', 1, 1000)
local offset = argSigned(ARGV[7], 'dayOffsetMs')
local expected = nil
if ARGV[8] ~= '' then expected = argPos(ARGV[8], 'expectedPrice') end

local existing = redis.call('HGET', KEYS[4], orderId)
if existing then return { 1, cjson.decode(existing).p, 0 } end

local g = redis.call('HMGET', KEYS[1], 'stock', 'price', 'limit', 'startsAt', 'endsAt', 'active', 'daily', 'dyn')
if not g[1] then return { -10 } end
local now = nowMs(nowArg)
local refused, stock, day, today, daily = unitsRefused(g, KEYS[2], KEYS[3], uid, qty, now, offset)
if refused then return refused end
local price = priceOf(tonumber(g[2]), g[8], stock, tierPm, campaignPm)
if expected and expected ~= price then return { -15, price } end

redis.call('HINCRBY', KEYS[1], 'stock', -qty)
redis.call('HINCRBY', KEYS[2], uid, qty)
local rec = { u = uid, q = qty, p = price }
if daily > 0 then
  redis.call('HSET', KEYS[3], uid, day .. ':' .. (today + qty))
  rec.dy = day
end
redis.call('HSET', KEYS[4], orderId, cjson.encode(rec))
return { 1, price, 1 }
