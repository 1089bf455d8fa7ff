-- expire: removes a member's lots whose expiry has passed, subtracting what they still held with
-- one `expire` op in the outbox, and moves the member's entry in the expiry index to their next
-- expiry. Running it again (a worker killed mid-run, two workers) finds nothing more to expire.
--
-- KEYS[1] acct  KEYS[2] lotz  KEYS[3] loth  KEYS[4] outbox  KEYS[5] expiry index of the partition
-- ARGV[1] userId  ARGV[2] now override ms ('' = Redis TIME)
-- Returns {1, points expired, lots expired, next expiry ms or 0}
--@include args
--@include now
argPos(ARGV[1], 'userId')
local uid = ARGV[1]
local nowArg = argNow(ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[5], uid)
  return { 1, 0, 0, 0 }
end
local now = nowMs(nowArg)
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'WITHSCORES')
local points, touched = 0, {}
for i = 1, #due, 2 do
  local id = due[i]
  local remaining = tonumber(redis.call('HGET', KEYS[3], id) or '0')
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  if remaining > 0 then
    points = points + remaining
    touched[#touched + 1] = { id, remaining, tonumber(due[i + 1]) }
  end
end
if points > 0 then
  local after = redis.call('HINCRBY', KEYS[1], 'avail', -points)
  local op = {
    opId = 'x' .. string.sub(redis.sha1hex(uid .. ':' .. touched[1][1]), 1, 31),
    kind = 'expire', userId = tonumber(uid), delta = -points, balanceAfter = after, available = after,
    bizType = 'expiry', bizId = tostring(#touched), lots = touched, at = now,
  }
  redis.call('XADD', KEYS[4], '*', 'o', cjson.encode(op))
end
local nextLot = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #nextLot == 0 then
  redis.call('ZREM', KEYS[5], uid)
  return { 1, points, #touched, 0 }
end
redis.call('ZADD', KEYS[5], tonumber(nextLot[2]), uid)
return { 1, points, #touched, tonumber(nextLot[2]) }
