-- hot-return: a refunded redemption of a hot item gives its units back to a bucket, once (marked
-- under its op id in that bucket: the caller always picks the same bucket for an op id). The
-- member's count is given back by lua/hot-uncount-1.lua in the member's slot.
--
-- KEYS[1] bucket hash  KEYS[2] the bucket's returned redemptions hash opId -> units
-- ARGV[1] redemption op id  ARGV[2] quantity (>0)
-- Returns 1 returned | 0 already returned | -10 bucket not in Redis
--@include args
local opId = argStr(ARGV[1], 'opId')
local qty = argPos(ARGV[2], 'quantity')
if redis.call('EXISTS', KEYS[1]) == 0 then return -10 end
if redis.call('HEXISTS', KEYS[2], opId) == 1 then return 0 end
redis.call('HINCRBY', KEYS[1], 'stock', qty)
redis.call('HSET', KEYS[2], opId, qty)
return 1
