-- hydrate: loads a member's account and live lots from Postgres values, only if Redis has no
-- account for them (a present account is newer than anything Postgres holds).
--
-- KEYS[1] acct  KEYS[2] lotz  KEYS[3] loth
-- ARGV[1] avail  ARGV[2] earned  ARGV[3..] lot triples: lotId, remaining, expiresAt
-- Returns 1 hydrated | 0 already present
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'avail', ARGV[1], 'earned', ARGV[2])
for i = 3, #ARGV, 3 do
  redis.call('ZADD', KEYS[2], ARGV[i + 2], ARGV[i])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
return 1
