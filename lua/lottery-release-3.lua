-- lottery-release: gives up a prize hold whose draw was not charged: a limited prize's unit goes
-- back to its stock. Idempotent; a hold with another token is left alone.
--
-- KEYS[1] stock hash  KEYS[2] holds hash  KEYS[3] hold deadlines zset
-- ARGV[1] hold id "<userId>:<keyHash>"  ARGV[2] token
-- Returns 1 released | 0 nothing to release
--@include args
local holdId = argStr(ARGV[1], 'holdId')
local token = argStr(ARGV[2], 'token')
local raw = redis.call('HGET', KEYS[2], holdId)
if not raw then return 0 end
local h = cjson.decode(raw)
if h.t ~= token then return 0 end
if h.p.limited == 1 then redis.call('HINCRBY', KEYS[1], tostring(h.p.id), 1) end
redis.call('HDEL', KEYS[2], holdId)
redis.call('ZREM', KEYS[3], holdId)
return 1
