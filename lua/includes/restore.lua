-- Restoring points to lots (a released hold, a refund): each portion goes back to the lot it came
-- from while that lot's expiry is still ahead; a portion whose lot expired meanwhile comes back as
-- a new lot (`<newLotPrefix>:<n>`) expiring `graceMs` from now. Returns the portions as
-- {lotId, amount, expiresAt, fromLotId} (fromLotId only for a moved portion).
local function restoreLots(lotz, loth, expidx, uid, portions, now, graceMs, newLotPrefix)
  local out = {}
  for i, p in ipairs(portions) do
    local id, amount, expiresAt = p[1], tonumber(p[2]), tonumber(p[3])
    if amount > 0 then
      if expiresAt > now then
        redis.call('ZADD', lotz, expiresAt, id)
        redis.call('HINCRBY', loth, id, amount)
        redis.call('ZADD', expidx, 'LT', expiresAt, uid)
        out[#out + 1] = { id, amount, expiresAt }
      else
        local newId = newLotPrefix .. ':' .. i
        local newExpiry = now + graceMs
        redis.call('ZADD', lotz, newExpiry, newId)
        redis.call('HINCRBY', loth, newId, amount)
        redis.call('ZADD', expidx, 'LT', newExpiry, uid)
        out[#out + 1] = { newId, amount, newExpiry, id }
      end
    end
  end
  return out
end
