-- repair-balance: reconcile's fix for a damaged balance field (the member's lots and the ledger
-- agree, the avail field does not), applied only if the field still holds what reconcile
-- measured (compare-and-set), so it never applies twice nor over a later op.
--
-- KEYS[1] acct hash
-- ARGV[1] avail measured  ARGV[2] avail to set
-- Returns 1 repaired | 0 avail moved since it was measured (nothing written) | -1 no account
--@include args
local measured = argSigned(ARGV[1], 'measured')
local target = argSigned(ARGV[2], 'target')
local cur = redis.call('HGET', KEYS[1], 'avail')
if not cur then return -1 end
if tonumber(cur) ~= measured then return 0 end
redis.call('HSET', KEYS[1], 'avail', target)
return 1
