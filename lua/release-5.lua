-- release: compensates a reservation that was not charged: units go back to stock and the
-- member's bought count drops, and so does the day's count the reservation added to (if that
-- day's count is still the one kept). Idempotent; a reservation with another token is left alone.
--
-- KEYS[1] goods hash  KEYS[2] bought hash  KEYS[3] reservations hash  KEYS[4] deadlines zset
-- KEYS[5] daily bought hash userId -> "<business day>:<units>"
-- ARGV[1] hold id "<userId>:<keyHash>"  ARGV[2] reservation token
-- Returns 1 released | 0 nothing to release
--@include args
--@include sale
local holdId = argStr(ARGV[1], 'holdId')
local token = argStr(ARGV[2], 'token')
local raw = redis.call('HGET', KEYS[3], holdId)
if not raw then return 0 end
local r = cjson.decode(raw)
if r.t ~= token then return 0 end
local uid = string.format('%d', r.u)
redis.call('HINCRBY', KEYS[1], 'stock', r.q)
local left = redis.call('HINCRBY', KEYS[2], uid, -r.q)
if left <= 0 then redis.call('HDEL', KEYS[2], uid) end
if r.dy then
  local today = unitsOn(redis.call('HGET', KEYS[5], uid), r.dy)
  if today > r.q then
    redis.call('HSET', KEYS[5], uid, r.dy .. ':' .. (today - r.q))
  elseif today > 0 then
    redis.call('HDEL', KEYS[5], uid)
  end
end
redis.call('HDEL', KEYS[3], holdId)
redis.call('ZREM', KEYS[4], holdId)
return 1
