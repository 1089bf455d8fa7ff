-- The saga's first step of a draw, for lua/lottery-reserve-4.lua (one) and
-- lua/lottery-reserve-many-n.lua (several in one call): KEYS and ARGV as lottery-reserve-4.lua
-- documents them, its reply as it returns it. Needs the args and now includes before it.

-- The lottery's prize table, decoded again only when its text differs from the previous draw's in
-- this script call: a batch's draws of one lottery share it (textMemo). Read only.
local prizesOf = textMemo(cjson.decode)

-- The lottery as its hash holds it, open now, and the prize a CSPRNG number `rand` picks among
-- those still in stock (stockKey): returns the lottery's fields (HMGET active, startsAt, endsAt,
-- prizes, cost, cooldownMs, daily) and the prize, or nil and the refusal reply. Writes nothing.
local function pickPrize(lotteryKey, stockKey, now, rand)
  local l = redis.call('HMGET', lotteryKey, 'active', 'startsAt', 'endsAt', 'prizes', 'cost', 'cooldownMs', 'daily')
  if not l[4] then return nil, { -20 } end
  local startsAt, endsAt = tonumber(l[2] or '0'), tonumber(l[3] or '0')
  if l[1] ~= '1' or (startsAt > 0 and now < startsAt) or (endsAt > 0 and now >= endsAt) then return nil, { -21 } end

  local prizes = prizesOf(l[4])
  local weights = {}
  local total = 0
  for i, p in ipairs(prizes) do
    local w = p.weight
    if p.limited == 1 and tonumber(redis.call('HGET', stockKey, tostring(p.id)) or '0') <= 0 then w = 0 end
    weights[i] = w
    total = total + w
  end
  if total == 0 then return nil, { -22 } end
  local pick = rand % total
  for i, p in ipairs(prizes) do
    if pick < weights[i] then return l, p end
    pick = pick - weights[i]
  end
end

local function lotteryReserveOne(KEYS, ARGV)
  local drawId = argStr(ARGV[1], 'drawId')
  local uid = argPos(ARGV[2], 'userId')
  local reqHash = argStr(ARGV[3], 'requestHash')
  local timeout = argPos(ARGV[4], 'timeoutMs')
  local nowArg = argNow(ARGV[5])
  local token = argStr(ARGV[6], 'token')
  local keyHash = argStr(ARGV[7], 'keyHash')
  local rand = argInt(ARGV[8], 'random')
  if rand >= 281474976710656 then badArg('random') end

  local holdId = string.format('%d', uid) .. ':' .. keyHash
  -- the same key again while its hold lives (a retry, a resent command) draws nothing more
  local existing = redis.call('HGET', KEYS[3], holdId)
  if existing then
    if cjson.decode(existing).h ~= reqHash then return { -2 } end
    return { 1, existing, 0 }
  end

  local now = nowMs(nowArg)
  local l, chosen = pickPrize(KEYS[1], KEYS[2], now, rand)
  if not l then return chosen end

  -- every check passed: write
  if chosen.limited == 1 then redis.call('HINCRBY', KEYS[2], tostring(chosen.id), -1) end
  local deadline = now + timeout
  local hold = cjson.encode({
    u = uid, k = keyHash, o = drawId, t = token, h = reqHash, d = deadline,
    c = tonumber(l[5]), cd = tonumber(l[6] or '0'), dl = tonumber(l[7] or '0'), p = chosen,
  })
  redis.call('HSET', KEYS[3], holdId, hold)
  redis.call('ZADD', KEYS[4], deadline, holdId)
  return { 1, hold, 1 }
end
