-- leaderboard: adds an earn op's points to the period boards, at most once per op id.
-- Boards are derived data (rebuildable from the ledger); period boards expire.
--
-- KEYS[1] daily  KEYS[2] weekly  KEYS[3] monthly  KEYS[4] all-time  KEYS[5] seen marker for the op
-- ARGV[1] userId  ARGV[2] points  ARGV[3] daily TTL s  ARGV[4] weekly TTL s  ARGV[5] monthly TTL s
-- ARGV[6] seen-marker TTL s
-- Returns 1 counted | 0 already counted
if not redis.call('SET', KEYS[5], '1', 'NX', 'EX', tonumber(ARGV[6])) then return 0 end
for i = 1, 4 do
  redis.call('ZINCRBY', KEYS[i], tonumber(ARGV[2]), ARGV[1])
end
for i = 1, 3 do
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[2 + i]))
end
return 1
