-- hot-charge: the charge of a redemption of a hot (bucketed) goods item, in the member's slot. The
-- member's units of the item are counted here, in the member's own slot (not in the goods slot,
-- which hot goods leave), and the per-member and daily limits are checked against them in the
-- same atomic step that charges: a member's concurrent requests can never pass the limit. The op
-- written is the one lua/charge-6.lua writes (lua/includes/spend.lua), so persistence, reconcile
-- and rebuild read it the same way. A refusal writes nothing; the caller releases its bucket hold.
--
-- KEYS[1..6] as lua/charge-6.lua  KEYS[7] the member's hot-goods counts hash
--           (goodsId -> units, d:<goodsId> -> "<business day>:<units>")
-- ARGV[1..10] as lua/charge-6.lua  ARGV[11] goodsId  ARGV[12] quantity (>0)
-- ARGV[13] per-member limit (0 none)  ARGV[14] units per member per business day (0 none)
-- ARGV[15] business-day offset ms (the day counted is floor((now + offset) / 1 day))
-- Returns as lua/charge-6.lua, and {-12, alreadyBought} limit exceeded | {-14, boughtToday} daily limit
--@include args
--@include now
--@include oprecord
--@include lots
--@include risk
--@include sale
--@include spend
local a = chargeArgs(ARGV)
local gid = string.format('%d', argPos(ARGV[11], 'goodsId'))
local qty = argPos(ARGV[12], 'quantity')
local limit = argInt(ARGV[13], 'limit')
local daily = argInt(ARGV[14], 'dailyLimit')
local offset = argSigned(ARGV[15], 'dayOffsetMs')
local dayField = 'd:' .. gid
local day, today = 0, 0

local function check(now)
  local bought = tonumber(redis.call('HGET', KEYS[7], gid) or '0')
  if limit > 0 and bought + qty > limit then return { -12, bought } end
  if daily > 0 then
    day = math.floor((now + offset) / 86400000)
    today = unitsOn(redis.call('HGET', KEYS[7], dayField), day)
    if today + qty > daily then return { -14, today } end
  end
  return nil
end

local function apply(now)
  redis.call('HINCRBY', KEYS[7], gid, qty)
  if daily > 0 then redis.call('HSET', KEYS[7], dayField, day .. ':' .. (today + qty)) end
end

return spend(KEYS, a, check, apply)
