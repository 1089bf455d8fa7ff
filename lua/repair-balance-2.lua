-- repair-balance: reconcile's fix for a damaged balance field — the member's lots agree with the
-- ledger, the avail field is off by `drift`. Applied only while the damage is still exactly that
-- (avail − Σ lot remainders = drift, checked atomically): ops that ran meanwhile move avail and
-- lots together and leave it intact, while a repair already applied (a second reconciler) has
-- removed it, so the fix applies at most once.
--
-- KEYS[1] acct hash  KEYS[2] loth (lotId -> remaining)
-- ARGV[1] drift measured (avail − lots, signed, non-zero)
-- Returns 1 repaired | 0 the damage is no longer that (nothing written) | -1 no account
--@include args
local drift = argSigned(ARGV[1], 'drift')
if drift == 0 then badArg('drift') end
local avail = redis.call('HGET', KEYS[1], 'avail')
if not avail then return -1 end
local lots = 0
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do lots = lots + tonumber(v) end
if tonumber(avail) - lots ~= drift then return 0 end
redis.call('HINCRBY', KEYS[1], 'avail', -drift)
return 1
