-- leaderboard: adds earn ops' points to the period boards, each op at most once per outbox entry.
-- Boards are derived data (rebuildable from the ledger); period boards expire.
--
-- "Once" is decided by the op's outbox stream entry id in its partition's applied set. The set
-- only has to remember entries that can still be delivered again (pending in the relay group):
-- the relay removes ids below the group's oldest pending entry (src/leaderboards/apply.ts), so
-- it holds the entries in flight, not one marker per op ever counted.
--
-- One call takes every op of a relay pass that falls on the same four boards: a member's points
-- are summed and added once per board, and each period board's TTL is set once (a call per op
-- cost Redis about twice as much per op: 49 against 25 µs, measured with 20,000 ops).
--
-- KEYS[1] daily  KEYS[2] weekly  KEYS[3] monthly  KEYS[4] all-time
-- KEYS[5] applied set of the ops' outbox partition (zset: stream id -> the id's ms)
-- ARGV[1] daily TTL s  ARGV[2] weekly TTL s  ARGV[3] monthly TTL s
-- then per op: userId, points (integer > 0), the op's outbox stream entry id (<ms>-<seq>)
-- Returns how many ops counted (0: all already counted). A malformed argument anywhere:
-- BAD_ARGUMENT, nothing written.
--@include args
for i = 1, 3 do argPos(ARGV[i], 'ttl') end
if #ARGV < 6 or (#ARGV - 3) % 3 ~= 0 then badArg('ops') end
local ms = {}
for i = 4, #ARGV, 3 do
  argPos(ARGV[i], 'userId')
  argPos(ARGV[i + 1], 'points')
  local m = string.match(argStr(ARGV[i + 2], 'streamId'), '^(%d+)%-%d+$')
  if not m then badArg('streamId') end
  ms[i] = m
end

local sums, users, counted = {}, {}, 0
for i = 4, #ARGV, 3 do
  if redis.call('ZADD', KEYS[5], 'NX', ms[i], ARGV[i + 2]) == 1 then
    local u = ARGV[i]
    if not sums[u] then
      sums[u] = 0
      users[#users + 1] = u
    end
    sums[u] = sums[u] + tonumber(ARGV[i + 1])
    counted = counted + 1
  end
end
for _, u in ipairs(users) do
  local points = istr(sums[u])
  for k = 1, 4 do
    redis.call('ZINCRBY', KEYS[k], points, u)
  end
end
if counted > 0 then
  for k = 1, 3 do
    redis.call('EXPIRE', KEYS[k], ARGV[k])
  end
end
return counted
