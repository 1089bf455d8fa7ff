-- quote (read-only): what one unit of a goods item costs a member right now, by the reserve
-- script's own rules (lua/includes/sale.lua), and what stands between them and buying it. The
-- price shown is the price a reserve at the same instant with the same factors charges.
--
-- KEYS[1] goods hash  KEYS[2] bought hash  KEYS[3] daily bought hash
-- ARGV[1] userId  ARGV[2] tier price factor per mille (1..1000)
-- ARGV[3] goods campaign discount per mille (1..1000; 1000 = none)
-- ARGV[4] business-day offset ms  ARGV[5] now override ms ('' = Redis TIME)
-- Returns {-10} no such goods | {1, unitPrice, listPrice, stock, dynamic 1|0, campaign per mille
--         applied, stock factor tenths, sale open 1|0, units the per-member limit leaves (-1 none),
--         units the daily limit leaves today (-1 none)}
--@include args
--@include now
--@include sale
local uid = argPos(ARGV[1], 'userId')
local tierPm = argRange(ARGV[2], 'priceFactor', 1, 1000)
local campaignPm = argRange(ARGV[3], 'campaignDiscount', 1, 1000)
local offset = argSigned(ARGV[4], 'dayOffsetMs')
local nowArg = argNow(ARGV[5])

local g = redis.call('HMGET', KEYS[1], 'stock', 'price', 'limit', 'startsAt', 'endsAt', 'active', 'daily', 'dyn')
if not g[1] then return { -10 } end
local now = nowMs(nowArg)
local stock = tonumber(g[1])
local base = tonumber(g[2])
local price, campaign, sf = priceOf(base, g[8], stock, tierPm, campaignPm)
local open = 0
if saleOpen(g[6], g[4], g[5], now) then open = 1 end
local limit = tonumber(g[3] or '0')
local limitLeft = -1
if limit > 0 then limitLeft = math.max(0, limit - tonumber(redis.call('HGET', KEYS[2], uid) or '0')) end
local daily = tonumber(g[7] or '0')
local dailyLeft = -1
if daily > 0 then
  local day = math.floor((now + offset) / 86400000)
  dailyLeft = math.max(0, daily - unitsOn(redis.call('HGET', KEYS[3], uid), day))
end
local dyn = 0
if g[8] == '1' then dyn = 1 end
return { 1, price, base, stock, dyn, campaign, sf, open, limitLeft, dailyLeft }
