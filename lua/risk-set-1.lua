-- risk-set: an admin's freeze or unfreeze reaching the member's slot (lua/includes/risk.lua).
-- Unfreezing also starts the day's DAILY_GAIN count again: the admin has judged the gain.
-- An account not in Redis is left alone: hydration loads the status from Postgres.
--
-- KEYS[1] acct
-- ARGV[1] 'freeze' | 'unfreeze'
-- Returns 1 done | 0 account not in Redis
--@include args
local mode = ARGV[1]
if mode ~= 'freeze' and mode ~= 'unfreeze' then badArg('mode') end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if mode == 'freeze' then
  redis.call('HSET', KEYS[1], 'rs', 'f')
else
  redis.call('HDEL', KEYS[1], 'rs', 'gd', 'gp')
end
return 1
