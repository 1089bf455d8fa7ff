-- Lots: lotz (zset lotId -> expiresAt ms) orders spending; loth (hash lotId -> remaining).
-- A lot expiring at T is spendable strictly before T: score <= now means expired.

-- Points still held in lots whose expiry has passed but that the expire job has not removed yet.
local function expiredPoints(lotz, loth, now)
  local ids = redis.call('ZRANGEBYSCORE', lotz, '-inf', now)
  local sum = 0
  for i = 1, #ids do
    sum = sum + tonumber(redis.call('HGET', loth, ids[i]) or '0')
  end
  return sum
end

-- Takes `amount` from live lots, earliest expiry first. Caller has checked there is enough.
-- Returns the touched lots as {lotId, taken, expiresAt} triples.
local function consumeLots(lotz, loth, now, amount)
  local need = amount
  local touched = {}
  while need > 0 do
    local page = redis.call('ZRANGEBYSCORE', lotz, '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 32)
    if #page == 0 then break end
    for i = 1, #page, 2 do
      local id = page[i]
      local expiresAt = tonumber(page[i + 1])
      local remaining = tonumber(redis.call('HGET', loth, id) or '0')
      local take = math.min(remaining, need)
      if take >= remaining then
        redis.call('ZREM', lotz, id)
        redis.call('HDEL', loth, id)
      else
        redis.call('HINCRBY', loth, id, -take)
      end
      if take > 0 then touched[#touched + 1] = { id, take, expiresAt } end
      need = need - take
      if need <= 0 then break end
    end
  end
  return touched
end
