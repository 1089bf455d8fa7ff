-- confirm: last saga step after a successful charge; the held units become sold.
--
-- KEYS[1] reservations hash  KEYS[2] reservation deadlines zset
-- ARGV[1] opId  ARGV[2] reservation token
-- Returns 1 confirmed | 0 no such reservation (already confirmed or released)
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
if cjson.decode(raw).t ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
