-- The check-in itself, for lua/checkin-6.lua (one) and lua/checkin-many-n.lua (several in one
-- call): KEYS and ARGV as checkin-6.lua documents them, its reply as it returns it. Needs the args,
-- now, lots, credit and risk includes before it.

-- The rules, multipliers and risk spec texts, decoded again only when they differ from the previous
-- check-in's in this script call (textMemo): a batch's check-ins mostly share them.
local rulesOf = textMemo(function(v)
  local rules = argJson(v, 'rules')
  argPos(rules.base, 'rules')
  argPos(rules.expiryMs, 'rules')
  if type(rules.bonuses) ~= 'table' then badArg('rules') end
  for _, b in ipairs(rules.bonuses) do
    argPos(b.days, 'rules')
    argPos(b.points, 'rules')
  end
  return rules
end)
local checkinMultipliers = textMemo(argMultipliers)
local checkinRisk = textMemo(argRisk)

local function checkinOne(KEYS, ARGV)
  local opId = argStr(ARGV[1], 'opId')
  local uid = argPos(ARGV[2], 'userId')
  local nowArg = argNow(ARGV[3])
  local offset = argSigned(ARGV[4], 'dayOffsetMs')
  local rules = rulesOf(ARGV[5])
  local m = checkinMultipliers(ARGV[6])
  local op = argJson(ARGV[7], 'extra')
  local risk = checkinRisk(ARGV[8])

  local now = nowMs(nowArg)
  local day = math.floor((now + offset) / 86400000)
  local s = redis.call('HMGET', KEYS[4], 'last', 'streak', 'longest', 'result')
  if tonumber(s[1]) == day then return { -6, s[4] or cjson.encode({ day = day }) } end
  if redis.call('EXISTS', KEYS[1]) == 0 then return { -1 } end
  if risk.m == 1 and isFrozen(KEYS[1]) then return { -40 } end

  local streak = 1
  if tonumber(s[1]) == day - 1 then streak = tonumber(s[2] or '0') + 1 end
  local longest = math.max(tonumber(s[3] or '0'), streak)
  local base, reached = rules.base, 0
  for _, b in ipairs(rules.bonuses) do
    if streak >= b.days and b.days > reached then base, reached = b.points, b.days end
  end
  local points, tierBefore, perMille = creditAmount(KEYS[1], base, m)
  if points < 1 then badArg('multipliers') end

  -- every check passed: write
  local expiresAt = now + rules.expiryMs
  local avail, tierAfter = creditLot(KEYS[1], KEYS[2], KEYS[3], KEYS[6], uid, opId, points, expiresAt, tierBefore, m)
  local available = avail - expiredPoints(KEYS[2], KEYS[3], now)
  local finding = riskAfterCredit(KEYS[1], risk, nil, now, day, 'checkin', points)
  local result = cjson.encode({ day = day, streak = streak, points = points, available = available })
  redis.call('HSET', KEYS[4], 'last', istr(day), 'streak', istr(streak), 'longest', istr(longest), 'result', result)

  op.opId = opId
  op.kind = 'earn'
  op.userId = uid
  op.delta = points
  op.balanceAfter = avail
  op.available = available
  op.bizType = 'checkin'
  op.bizId = tostring(day)
  op.at = now
  op.expiresAt = expiresAt
  op.base = base
  op.mult = perMille
  op.lt = m.lifetime
  op.tier = tierAfter
  if tierAfter ~= tierBefore then op.tierFrom = tierBefore end
  op.streak = streak
  if finding then op.risk = finding end
  local json = cjson.encode(op)
  redis.call('XADD', KEYS[5], '*', 'o', json)
  return { 1, result, json }
end
