-- give-back: returns units to stock once — an order's units recorded by lua/take-4.lua (mode
-- 'order'), or a refunded redemption's (mode 'redemption', marked under its op id so it is
-- returned once). The member's bought count drops, and so does the day's count the units were
-- counted on, if that day's count is still the one kept.
--
-- KEYS[1] goods hash  KEYS[2] bought hash  KEYS[3] daily bought hash  KEYS[4] taken hash
-- KEYS[5] returned redemptions hash opId -> units
-- ARGV[1] mode 'order' | 'redemption'  ARGV[2] orderId (an order) or op id (a redemption)
-- ARGV[3] userId  ARGV[4] quantity  ARGV[5] business day the units were counted on ('' = none)
--         (ARGV[3..5] redemption mode only: an order's come from its record)
-- Returns 1 returned | 0 nothing to return (never taken, or already returned) | -10 goods not in Redis
--@include args
--@include sale
local mode = ARGV[1]
if mode ~= 'order' and mode ~= 'redemption' then badArg('mode') end
local id = argStr(ARGV[2], 'id')
-- a goods item not in Redis is loaded first (its stock from the record), then given back to
if redis.call('EXISTS', KEYS[1]) == 0 then return -10 end
local uid, qty, day
if mode == 'order' then
  local raw = redis.call('HGET', KEYS[4], id)
  if not raw then return 0 end
  local r = cjson.decode(raw)
  uid, qty, day = string.format('%d', r.u), r.q, r.dy
  redis.call('HDEL', KEYS[4], id)
else
  uid = string.format('%d', argPos(ARGV[3], 'userId'))
  qty = argPos(ARGV[4], 'quantity')
  if ARGV[5] ~= '' then day = argSigned(ARGV[5], 'day') end
  if redis.call('HSETNX', KEYS[5], id, qty) == 0 then return 0 end
end
redis.call('HINCRBY', KEYS[1], 'stock', qty)
local left = redis.call('HINCRBY', KEYS[2], uid, -qty)
if left <= 0 then redis.call('HDEL', KEYS[2], uid) end
if day then
  local today = unitsOn(redis.call('HGET', KEYS[3], uid), day)
  if today > qty then
    redis.call('HSET', KEYS[3], uid, day .. ':' .. (today - qty))
  elseif today > 0 then
    redis.call('HDEL', KEYS[3], uid)
  end
end
return 1
