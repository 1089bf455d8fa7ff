-- checkin: the member's check-in for the business day, once per day, with its streak. Points by
-- streak (consecutive days including today): the base, or the bonus of the longest streak length
-- reached; then the tier and campaign multipliers, floored (lua/includes/credit.lua). A missed day
-- resets the streak to 1. Credits a lot like any earn, with its outbox op (bizType 'checkin').
--
-- KEYS[1] acct  KEYS[2] lotz  KEYS[3] loth  KEYS[4] streak hash (last day, streak, longest,
--   result JSON of the last check-in)  KEYS[5] outbox  KEYS[6] expidx
-- ARGV[1] opId (random; the lot id)  ARGV[2] userId  ARGV[3] now override ms ('' = Redis TIME)
-- ARGV[4] business-day offset ms  ARGV[5] rules JSON {base, bonuses:[{days, points}], expiryMs}
-- ARGV[6] multipliers JSON (credit.lua)  ARGV[7] extra fields JSON merged into the op
-- ARGV[8] risk spec JSON (lua/includes/risk.lua): a frozen member is refused; the points count toward DAILY_GAIN
-- Returns {1, resultJson, opJson} | {-1} not hydrated | {-6, resultJson} already checked in today | {-40} member frozen
--   resultJson: {day (days since 1970-01-01 in the zone), streak, points, available}
--@include args
--@include now
--@include lots
--@include credit
--@include risk
local opId = argStr(ARGV[1], 'opId')
local uid = argPos(ARGV[2], 'userId')
local nowArg = argNow(ARGV[3])
local offset = argSigned(ARGV[4], 'dayOffsetMs')
local rules = argJson(ARGV[5], 'rules')
argPos(rules.base, 'rules')
argPos(rules.expiryMs, 'rules')
if type(rules.bonuses) ~= 'table' then badArg('rules') end
for _, b in ipairs(rules.bonuses) do
  argPos(b.days, 'rules')
  argPos(b.points, 'rules')
end
local m = argMultipliers(ARGV[6])
local op = argJson(ARGV[7], 'extra')
local risk = argRisk(ARGV[8])

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
redis.call('HSET', KEYS[4], 'last', day, 'streak', streak, 'longest', longest, 'result', result)

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
