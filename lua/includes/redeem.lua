-- The redemption itself, for lua/redeem-9.lua (one) and lua/redeem-many-n.lua (several in one call):
-- KEYS and ARGV as redeem-9.lua documents them, its reply as it returns it. Needs the args, now,
-- sale, oprecord, lots and risk includes before it.

-- The tier table {min = [minPoints…], pm = [price per mille…]}, decoded once per script call: the
-- API passes the same text with every redemption of a batch.
local tierTable = textMemo(function(v)
  local tiers = argJson(v, 'tiers')
  if type(tiers.min) ~= 'table' or type(tiers.pm) ~= 'table' or #tiers.min == 0 or #tiers.min ~= #tiers.pm then
    badArg('tiers')
  end
  return tiers
end)

local function redeemOne(KEYS, ARGV)
  local opId = argStr(ARGV[1], 'opId')
  local uid = argPos(ARGV[2], 'userId')
  local qty = argPos(ARGV[3], 'quantity')
  local reqHash = argStr(ARGV[4], 'requestHash')
  local ttl = argPos(ARGV[5], 'ttl')
  local nowArg = argNow(ARGV[6])
  local token = argStr(ARGV[7], 'token')
  local keyHash = argStr(ARGV[8], 'keyHash')
  local tiers = tierTable(ARGV[9])
  local campaignPm = argRange(ARGV[10], 'campaignDiscount', 1, 1000)
  local offset = argSigned(ARGV[11], 'dayOffsetMs')
  local expected = nil
  if ARGV[12] ~= '' then expected = argPos(ARGV[12], 'expectedPrice') end
  local op = argJson(ARGV[13], 'extra')

  local prior = replayOrConflict(KEYS[7], reqHash, token)
  if prior then return prior end
  local a = redis.call('HMGET', KEYS[4], 'avail', 'earned', 'tier', 'rs')
  if not a[1] and not a[2] then
    if redis.call('EXISTS', KEYS[4]) == 0 then return { -1 } end
  end
  if a[4] == 'f' then return { -40 } end

  local g = redis.call('HMGET', KEYS[1], 'stock', 'price', 'limit', 'startsAt', 'endsAt', 'active', 'daily', 'dyn')
  if not g[1] then return { -10 } end
  local now = nowMs(nowArg)
  local refused, stock, day, today, daily = unitsRefused(g, KEYS[2], KEYS[3], uid, qty, now, offset)
  if refused then return refused end

  -- the member's tier: the stored position, or higher if lifetime earned points reached one
  local earned = tonumber(a[2] or '0')
  local position = tonumber(a[3] or '0')
  local reached = 0
  for i = 1, #tiers.min do
    if tiers.min[i] <= earned then reached = i - 1 end
  end
  if reached > position then position = reached end
  if position > #tiers.pm - 1 then position = #tiers.pm - 1 end
  local tierPm = tiers.pm[position + 1]
  local price = priceOf(tonumber(g[2]), g[8], stock, tierPm, campaignPm)
  if expected and expected ~= price then return { -15, price } end

  local amount = price * qty
  local avail = tonumber(a[1] or '0')
  local expired, firstLive = expiredAndFirstLive(KEYS[5], KEYS[6], now)
  local spendable = avail - expired
  if spendable < amount then return { -4, spendable } end

  redis.call('HINCRBY', KEYS[1], 'stock', istr(-qty))
  local member = istr(uid)
  redis.call('HINCRBY', KEYS[2], member, istr(qty))
  if daily > 0 then redis.call('HSET', KEYS[3], member, istr(day) .. ':' .. istr(today + qty)) end
  local touched = consumeLots(KEYS[5], KEYS[6], now, amount, firstLive)
  local after = redis.call('HINCRBY', KEYS[4], 'avail', istr(-amount))

  op.opId = opId
  op.kind = 'spend'
  op.userId = uid
  op.delta = -amount
  op.balanceAfter = after
  op.available = spendable - amount
  op.lots = touched
  op.at = now
  op.t = token
  op.h = reqHash
  op.k = keyHash
  local json = cjson.encode(op)
  redis.call('XADD', KEYS[9], '*', 'o', json)
  local ttlText = istr(ttl)
  redis.call('SET', KEYS[7], json, 'EX', ttlText)
  redis.call('SET', KEYS[8], keyHash, 'EX', ttlText)
  return { 1, json, 0, price }
end
