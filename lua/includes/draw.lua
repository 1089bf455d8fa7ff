-- The member's side of a draw, for lua/lottery-draw-7.lua (one) and lua/lottery-draw-many-n.lua
-- (several in one call): KEYS and ARGV as lottery-draw-7.lua documents them, its reply as it
-- returns it. Needs the args, now, oprecord, lots and risk includes before it.

local function drawOne(KEYS, ARGV)
  local drawId = argStr(ARGV[1], 'drawId')
  local uid = argPos(ARGV[2], 'userId')
  local reqHash = argStr(ARGV[3], 'requestHash')
  local ttl = argPos(ARGV[4], 'ttl')
  local nowArg = argNow(ARGV[5])
  local token = argStr(ARGV[6], 'token')
  local keyHash = argStr(ARGV[7], 'keyHash')
  local lotteryId = argPos(ARGV[8], 'lotteryId')
  local cost = argPos(ARGV[9], 'cost')
  local cooldown = argInt(ARGV[10], 'cooldownMs')
  local daily = argInt(ARGV[11], 'daily')
  local offset = argSigned(ARGV[12], 'dayOffsetMs')
  local prize = argJson(ARGV[13], 'prize')
  local lifetime = argPos(ARGV[14], 'lifetimeMs')
  argPos(prize.id, 'prize')
  if type(prize.name) ~= 'string' or prize.name == '' then badArg('prize') end
  local prizePoints = 0
  if prize.kind == 'points' then
    prizePoints = argPos(prize.points, 'prize')
  elseif prize.kind == 'goods' then
    argPos(prize.goodsId, 'prize')
    argStr(ARGV[15], 'exchangeNo')
  elseif prize.kind ~= 'none' then
    badArg('prize')
  end

  local prior = replayOrConflict(KEYS[4], reqHash, token)
  if prior then return prior end
  if redis.call('EXISTS', KEYS[1]) == 0 then return { -1 } end
  if memberActs(ARGV[16]) and isFrozen(KEYS[1]) then return { -40 } end

  local now = nowMs(nowArg)
  local day = math.floor((now + offset) / 86400000)
  local s = redis.call('HMGET', KEYS[5], 'last', 'day', 'n')
  local last = tonumber(s[1])
  if cooldown > 0 and last and now < last + cooldown then return { -23, last + cooldown - now } end
  local n = 0
  if tonumber(s[2]) == day then n = tonumber(s[3] or '0') end
  if daily > 0 and n >= daily then return { -3, n } end
  local avail = tonumber(redis.call('HGET', KEYS[1], 'avail') or '0')
  local expired, firstLive = expiredAndFirstLive(KEYS[2], KEYS[3], now)
  local spendable = avail - expired
  if spendable < cost then return { -4, spendable } end

  -- every check passed: write
  local touched = consumeLots(KEYS[2], KEYS[3], now, cost, firstLive)
  local afterCost = redis.call('HINCRBY', KEYS[1], 'avail', -cost)
  local final = spendable - cost + prizePoints
  local draw = {
    opId = drawId, kind = 'spend', userId = uid, delta = -cost, balanceAfter = afterCost, available = final,
    bizType = 'lottery', bizId = drawId, lots = touched, at = now, t = token, h = reqHash, k = keyHash,
    lotteryId = lotteryId, prize = prize, day = day,
  }
  if prize.kind == 'goods' then draw.exchangeNo = ARGV[15] end
  local json = cjson.encode(draw)
  redis.call('XADD', KEYS[6], '*', 'o', json)
  if prizePoints > 0 then
    local lotId = drawId .. '-prize'
    local expiresAt = now + lifetime
    redis.call('ZADD', KEYS[2], expiresAt, lotId)
    redis.call('HSET', KEYS[3], lotId, prizePoints)
    redis.call('ZADD', KEYS[7], 'LT', expiresAt, uid)
    local afterPrize = redis.call('HINCRBY', KEYS[1], 'avail', prizePoints)
    redis.call('XADD', KEYS[6], '*', 'o', cjson.encode({
      opId = lotId, kind = 'earn', userId = uid, delta = prizePoints, balanceAfter = afterPrize, available = final,
      bizType = 'lottery_prize', bizId = drawId, at = now, expiresAt = expiresAt, lt = 0, lotteryId = lotteryId,
    }))
  end
  if cooldown > 0 or daily > 0 then
    redis.call('HSET', KEYS[5], 'last', istr(now), 'day', istr(day), 'n', istr(n + 1))
    redis.call('PEXPIRE', KEYS[5], math.max(cooldown, 172800000))
  end
  redis.call('SET', KEYS[4], json, 'EX', ttl)
  return { 1, json, 0 }
end
