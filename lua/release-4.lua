-- release: compensates a reservation that was not charged: units go back to stock and the
-- member's bought count drops. Idempotent; a reservation with another token is left alone.
--
-- KEYS[1] goods hash  KEYS[2] bought hash  KEYS[3] reservations hash  KEYS[4] deadlines zset
-- ARGV[1] opId  ARGV[2] reservation token
-- Returns 1 released | 0 nothing to release
local raw = redis.call('HGET', KEYS[3], ARGV[1])
if not raw then return 0 end
local r = cjson.decode(raw)
if r.t ~= ARGV[2] then return 0 end
redis.call('HINCRBY', KEYS[1], 'stock', r.q)
local left = redis.call('HINCRBY', KEYS[2], tostring(r.u), -r.q)
if left <= 0 then redis.call('HDEL', KEYS[2], tostring(r.u)) end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1
