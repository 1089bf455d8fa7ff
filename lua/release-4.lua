-- release: compensates a reservation that was not charged: units go back to stock and the
-- member's bought count drops. Idempotent; a reservation with another token is left alone.
--
-- KEYS[1] goods hash  KEYS[2] bought hash  KEYS[3] reservations hash  KEYS[4] deadlines zset
-- ARGV[1] hold id "<userId>:<keyHash>"  ARGV[2] reservation token
-- Returns 1 released | 0 nothing to release
--@include args
local holdId = argStr(ARGV[1], 'holdId')
local token = argStr(ARGV[2], 'token')
local raw = redis.call('HGET', KEYS[3], holdId)
if not raw then return 0 end
local r = cjson.decode(raw)
if r.t ~= token then return 0 end
redis.call('HINCRBY', KEYS[1], 'stock', r.q)
local left = redis.call('HINCRBY', KEYS[2], tostring(r.u), -r.q)
if left <= 0 then redis.call('HDEL', KEYS[2], tostring(r.u)) end
redis.call('HDEL', KEYS[3], holdId)
redis.call('ZREM', KEYS[4], holdId)
return 1
