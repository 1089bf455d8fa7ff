-- transfer-done: takes a transfer off its partition's pending set once its credit is in the
-- receiver's slot (made now, or found made by an earlier attempt). Repeating it changes nothing.
--
-- KEYS[1] pending transfers zset of the sender's partition  KEYS[2] pending transfers data hash
-- ARGV[1] transfer id
-- Returns 1 removed | 0 was not pending
--@include args
local id = argStr(ARGV[1], 'transferId')
redis.call('HDEL', KEYS[2], id)
return redis.call('ZREM', KEYS[1], id)
