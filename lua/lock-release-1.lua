-- lock-release: deletes a task lock only if this holder still owns it.
--
-- KEYS[1] lock key   ARGV[1] holder token
-- Returns 1 released | 0 not the holder (expired, or taken by another)
--@include args
argStr(ARGV[1], 'token')
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
