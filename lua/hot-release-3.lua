-- hot-release: compensates a bucket hold that was not charged: its units go back to the bucket.
-- Idempotent; a hold with another token is left alone. (Hot goods count a member's units only when
-- charged, in the member's slot, so there is no count to give back here.)
--
-- KEYS[1] bucket hash  KEYS[2] bucket reservations hash  KEYS[3] bucket deadlines zset
-- ARGV[1] hold id "<userId>:<keyHash>"  ARGV[2] reservation token
-- Returns 1 released | 0 nothing to release
--@include args
local holdId = argStr(ARGV[1], 'holdId')
local token = argStr(ARGV[2], 'token')
local raw = redis.call('HGET', KEYS[2], holdId)
if not raw then return 0 end
local r = cjson.decode(raw)
if r.t ~= token then return 0 end
redis.call('HINCRBY', KEYS[1], 'stock', r.q)
redis.call('HDEL', KEYS[2], holdId)
redis.call('ZREM', KEYS[3], holdId)
return 1
