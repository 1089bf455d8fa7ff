-- hot-uncount: a refunded redemption of a hot item no longer counts toward the member's limits:
-- its units come off the member's count of the item, and off the day's count if the units were
-- counted on the day still kept. Once per op id (field r:<opId> of the same hash).
--
-- KEYS[1] the member's hot-goods counts hash (goodsId -> units, d:<goodsId> -> "<day>:<units>")
-- ARGV[1] goodsId  ARGV[2] redemption op id  ARGV[3] quantity (>0)
-- ARGV[4] business day the units were counted on ('' = none)
-- Returns 1 given back | 0 already given back
--@include args
--@include sale
local gid = string.format('%d', argPos(ARGV[1], 'goodsId'))
local opId = argStr(ARGV[2], 'opId')
local qty = argPos(ARGV[3], 'quantity')
local day = nil
if ARGV[4] ~= '' then day = argSigned(ARGV[4], 'day') end
if redis.call('HSETNX', KEYS[1], 'r:' .. opId, qty) == 0 then return 0 end
local left = redis.call('HINCRBY', KEYS[1], gid, -qty)
if left <= 0 then redis.call('HDEL', KEYS[1], gid) end
if day then
  local field = 'd:' .. gid
  local today = unitsOn(redis.call('HGET', KEYS[1], field), day)
  if today > qty then
    redis.call('HSET', KEYS[1], field, day .. ':' .. (today - qty))
  elseif today > 0 then
    redis.call('HDEL', KEYS[1], field)
  end
end
return 1
