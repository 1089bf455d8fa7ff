-- hydrate: loads a member's account and live lots from Postgres values, only if Redis has no
-- account for them (a present account is newer than anything Postgres holds).
--
-- KEYS[1] acct  KEYS[2] lotz  KEYS[3] loth  KEYS[4] expiry index of the partition
-- ARGV[1] userId  ARGV[2] avail (owned minus frozen)  ARGV[3] lifetime earned  ARGV[4] tier
-- ARGV[5] frozen (points of open holds; their records are restored by the caller)
-- ARGV[6] risk status: 'f' frozen member (lua/includes/risk.lua), '' otherwise
-- ARGV[7..] lot triples: lotId, remaining, expiresAt (live remainders, frozen portions left out)
-- Returns 1 hydrated | 0 already present
--@include args
argPos(ARGV[1], 'userId')
argSigned(ARGV[2], 'avail')
argInt(ARGV[3], 'earned')
argInt(ARGV[4], 'tier')
argInt(ARGV[5], 'frozen')
if ARGV[6] ~= '' and ARGV[6] ~= 'f' then badArg('risk') end
if (#ARGV - 6) % 3 ~= 0 then badArg('lots') end
for i = 7, #ARGV, 3 do
  argStr(ARGV[i], 'lotId')
  argInt(ARGV[i + 1], 'remaining')
  argInt(ARGV[i + 2], 'expiresAt')
end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'avail', ARGV[2], 'earned', ARGV[3], 'tier', ARGV[4], 'frozen', ARGV[5])
if ARGV[6] == 'f' then redis.call('HSET', KEYS[1], 'rs', 'f') end
for i = 7, #ARGV, 3 do
  redis.call('ZADD', KEYS[2], ARGV[i + 2], ARGV[i])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[4], 'LT', ARGV[i + 2], ARGV[1])
end
return 1
