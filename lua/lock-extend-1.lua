-- lock-extend: pushes a task lock's expiry out, only for its holder.
--
-- KEYS[1] lock key   ARGV[1] holder token   ARGV[2] ttl ms
-- Returns 1 extended | 0 not the holder
--@include args
argStr(ARGV[1], 'token')
argPos(ARGV[2], 'ttlMs')
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
