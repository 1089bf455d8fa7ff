-- Lots: lotz (zset lotId -> expiresAt ms) orders spending; loth (hash lotId -> remaining).
-- A lot expiring at T is spendable strictly before T: score <= now means expired.

-- Points still held in lots whose expiry has passed but that the expire job has not removed yet.
local function expiredPoints(lotz, loth, now)
  local ids = redis.call('ZRANGEBYSCORE', lotz, '-inf', istr(now))
  local sum = 0
  for i = 1, #ids do
    sum = sum + tonumber(redis.call('HGET', loth, ids[i]) or '0')
  end
  return sum
end

-- Lots read per page (and the same as command arguments: text, so Redis formats no number).
local LOT_PAGE, LOT_PAGE_TEXT, LOT_PAGE_LAST = 32, '32', '31'

-- What a spend asks of the lots before it takes any, from one read of the earliest-expiring page
-- (one command fewer than expiredPoints and consumeLots' first read): the points in expired lots
-- the expire job has not removed yet, and the live lots that come first as consumeLots reads them
-- (id, score, …). A page of nothing but expired lots may not hold them all (an expire job far
-- behind): then the sum is expiredPoints' and the live page nil, for consumeLots to read.
local function expiredAndFirstLive(lotz, loth, now)
  local page = redis.call('ZRANGE', lotz, '0', LOT_PAGE_LAST, 'WITHSCORES')
  local i = 1
  local sum = 0
  while i < #page and tonumber(page[i + 1]) <= now do
    sum = sum + tonumber(redis.call('HGET', loth, page[i]) or '0')
    i = i + 2
  end
  if i == 1 then return 0, page end
  if i > #page and #page == 2 * LOT_PAGE then return expiredPoints(lotz, loth, now), nil end
  return sum, { unpack(page, i) }
end

-- Takes `amount` from live lots, earliest expiry first. Caller has checked there is enough.
-- Returns the touched lots as {lotId, taken, expiresAt} triples. `firstLive`: the live page
-- expiredAndFirstLive read, used instead of reading it again.
local function consumeLots(lotz, loth, now, amount, firstLive)
  local need = amount
  local touched = {}
  local page = firstLive
  while need > 0 do
    page = page or redis.call('ZRANGEBYSCORE', lotz, '(' .. istr(now), '+inf', 'WITHSCORES', 'LIMIT', '0', LOT_PAGE_TEXT)
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
        redis.call('HINCRBY', loth, id, istr(-take))
      end
      if take > 0 then touched[#touched + 1] = { id, take, expiresAt } end
      need = need - take
      if need <= 0 then break end
    end
    -- every lot of the page was used up and removed: the next read starts after them
    page = nil
  end
  return touched
end
