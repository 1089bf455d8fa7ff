-- confirm: last saga step after a successful charge; the held units become sold.
--
-- KEYS[1] reservations hash  KEYS[2] reservation deadlines zset
-- ARGV[1] hold id "<userId>:<keyHash>"  ARGV[2] reservation token
-- Returns 1 confirmed | 0 no such reservation (already confirmed or released)
--@include args
local holdId = argStr(ARGV[1], 'holdId')
local token = argStr(ARGV[2], 'token')
local raw = redis.call('HGET', KEYS[1], holdId)
if not raw then return 0 end
if cjson.decode(raw).t ~= token then return 0 end
redis.call('HDEL', KEYS[1], holdId)
redis.call('ZREM', KEYS[2], holdId)
return 1
