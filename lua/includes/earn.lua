-- The earn itself, for lua/earn-7.lua (one) and lua/earn-many-n.lua (several in one call): KEYS
-- and ARGV as earn-7.lua documents them, its reply as it returns it. Needs the args, now,
-- oprecord, lots, credit and risk includes before it.

-- The multipliers JSON, decoded again only when the text differs from the previous earn's in this
-- script call: the earns of a batch mostly share it (same action, same campaigns).
local multipliersOf = textMemo(argMultipliers)

local function earnOne(KEYS, ARGV)
  local opId = argStr(ARGV[1], 'opId')
  local uid = argPos(ARGV[2], 'userId')
  local base = argPos(ARGV[3], 'points')
  local bizType = argStr(ARGV[4], 'bizType')
  local capCount = argInt(ARGV[6], 'capCount')
  local capPoints = argInt(ARGV[7], 'capPoints')
  local lifetime = argPos(ARGV[8], 'lifetimeMs')
  local reqHash = argStr(ARGV[9], 'requestHash')
  local ttl = argPos(ARGV[10], 'ttl')
  local nowArg = argNow(ARGV[11])
  local op = argJson(ARGV[12], 'extra')
  local keyHash = argStr(ARGV[13], 'keyHash')
  local offset = argSigned(ARGV[14], 'dayOffsetMs')
  local m = multipliersOf(ARGV[15])
  local risk = argRisk(ARGV[16])

  local prior = replayOrConflict(KEYS[4], reqHash, nil)
  if prior then return prior end
  if redis.call('EXISTS', KEYS[1]) == 0 then return { -1 } end
  if risk.m == 1 and isFrozen(KEYS[1]) then return { -40 } end

  local now = nowMs(nowArg)
  local day = math.floor((now + offset) / 86400000)
  local points, tierBefore, perMille = creditAmount(KEYS[1], base, m)
  if points < 1 then badArg('multipliers') end
  local n, pts = 0, 0
  if capCount > 0 or capPoints > 0 then
    local c = redis.call('HMGET', KEYS[5], 'day', 'n', 'pts')
    if tonumber(c[1]) == day then
      n, pts = tonumber(c[2] or '0'), tonumber(c[3] or '0')
    end
    if (capCount > 0 and n + 1 > capCount) or (capPoints > 0 and pts + points > capPoints) then
      return { -3, n, pts }
    end
  end

  local burstOk, retryAfter, burstKept = burstCheck(KEYS[1], risk, now)
  if not burstOk then return { -41, retryAfter } end

  -- every check passed: write
  if capCount > 0 or capPoints > 0 then
    redis.call('HSET', KEYS[5], 'day', day, 'n', n + 1, 'pts', pts + points)
    redis.call('PEXPIRE', KEYS[5], 172800000)
  end
  local expiresAt = now + lifetime
  local avail, tierAfter = creditLot(KEYS[1], KEYS[2], KEYS[3], KEYS[7], uid, opId, points, expiresAt, tierBefore, m)
  local finding = riskAfterCredit(KEYS[1], risk, burstKept, now, day, bizType, points)

  op.opId = opId
  op.kind = 'earn'
  op.userId = uid
  op.delta = points
  op.balanceAfter = avail
  op.available = avail - expiredPoints(KEYS[2], KEYS[3], now)
  op.bizType = bizType
  op.bizId = ARGV[5]
  op.at = now
  op.expiresAt = expiresAt
  op.h = reqHash
  op.k = keyHash
  if finding then op.risk = finding end
  op.base = base
  op.mult = perMille
  op.lt = m.lifetime
  op.tier = tierAfter
  if tierAfter ~= tierBefore then op.tierFrom = tierBefore end
  local json = cjson.encode(op)
  redis.call('XADD', KEYS[6], '*', 'o', json)
  redis.call('SET', KEYS[4], json, 'EX', ttl)
  return { 1, json, 0 }
end
