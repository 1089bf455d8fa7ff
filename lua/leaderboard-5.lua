-- leaderboard: adds an earn op's points to the period boards, at most once per outbox entry.
-- Boards are derived data (rebuildable from the ledger); period boards expire.
--
-- "Once" is decided by the op's outbox stream entry id in its partition's applied set. The set
-- only has to remember entries that can still be delivered again (pending in the relay group):
-- the relay removes ids below the group's oldest pending entry (src/leaderboards/apply.ts), so
-- it holds the entries in flight, not one marker per op ever counted.
--
-- KEYS[1] daily  KEYS[2] weekly  KEYS[3] monthly  KEYS[4] all-time
-- KEYS[5] applied set of the op's outbox partition (zset: stream id -> the id's ms)
-- ARGV[1] userId  ARGV[2] points (integer > 0)
-- ARGV[3] daily TTL s  ARGV[4] weekly TTL s  ARGV[5] monthly TTL s
-- ARGV[6] the op's outbox stream entry id (<ms>-<seq>)
-- Returns 1 counted | 0 already counted (a malformed argument: BAD_ARGUMENT, nothing written)
--@include args
argPos(ARGV[1], 'userId')
argPos(ARGV[2], 'points')
for i = 3, 5 do argPos(ARGV[i], 'ttl') end
local ms = string.match(argStr(ARGV[6], 'streamId'), '^(%d+)%-%d+$')
if not ms then badArg('streamId') end

if redis.call('ZADD', KEYS[5], 'NX', ms, ARGV[6]) == 0 then return 0 end
for i = 1, 4 do
  redis.call('ZINCRBY', KEYS[i], tonumber(ARGV[2]), ARGV[1])
end
for i = 1, 3 do
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[2 + i]))
end
return 1
