-- The receiver's side of a points transfer, for lua/transfer-credit-6.lua (the saga's second step)
-- and lua/transfer-14.lua (the whole transfer at once): KEYS and ARGV as transfer-credit-6.lua
-- documents them. Needs the args, now, oprecord, lots and credit includes before it.

-- The multipliers, decoded once per script call while the text repeats (a batch's transfers all
-- pass the same): read only.
local transferMultipliers = textMemo(argMultipliers)

-- ARGV[2..7] checked (every argument but the transfer): request hash, TTL, now, key hash, the
-- multipliers (which must pay the amount as it is) and the receiver.
local function creditArgs(ARGV)
  local reqHash = argStr(ARGV[2], 'requestHash')
  local ttl = argPos(ARGV[3], 'ttl')
  local nowArg = argNow(ARGV[4])
  local keyHash = argStr(ARGV[5], 'keyHash')
  local m = transferMultipliers(ARGV[6])
  local uid = argPos(ARGV[7], 'toUserId')
  if m.applyTier == 1 or m.campaign ~= 1000 or m.lifetime ~= 0 then badArg('multipliers') end
  return reqHash, ttl, nowArg, keyHash, m, uid
end

local function creditOne(KEYS, ARGV)
  local t = argJson(ARGV[1], 'transfer')
  local reqHash, ttl, nowArg, keyHash, m, uid = creditArgs(ARGV)
  if type(t.id) ~= 'string' or t.id == '' then badArg('transfer') end
  argPos(t.from, 'transfer')
  if argPos(t.to, 'transfer') ~= uid or t.from == uid then badArg('transfer') end
  local amount = argPos(t.amount, 'transfer')
  if type(t.parts) ~= 'table' or #t.parts == 0 then badArg('transfer') end
  local total = 0
  for _, p in ipairs(t.parts) do
    if type(p) ~= 'table' then badArg('transfer') end
    argInt(p[1], 'transfer')
    total = total + argPos(p[2], 'transfer')
  end
  if total ~= amount then badArg('transfer') end

  local prior = replayOrConflict(KEYS[4], reqHash, nil)
  if prior then return prior end
  if redis.call('EXISTS', KEYS[1]) == 0 then return { -1 } end

  -- every check passed: write
  local now = nowMs(nowArg)
  local points, tierBefore = creditAmount(KEYS[1], amount, m)
  if points ~= amount then badArg('multipliers') end
  local avail, tierAfter = 0, tierBefore
  local newLots = {}
  for n, p in ipairs(t.parts) do
    local lotId = t.id .. '-in-' .. n
    avail, tierAfter = creditLot(KEYS[1], KEYS[2], KEYS[3], KEYS[6], uid, lotId, p[2], p[1], tierBefore, m)
    newLots[n] = { lotId, p[2], p[1] }
  end

  local op = {
    opId = t.id .. '-in', kind = 'earn', userId = uid, delta = amount, balanceAfter = avail,
    available = avail - expiredPoints(KEYS[2], KEYS[3], now), bizType = 'transfer_in', bizId = t.id, at = now,
    h = reqHash, k = keyHash, base = amount, mult = 1000, lt = 0, tier = tierAfter, newLots = newLots, transfer = t,
  }
  local json = cjson.encode(op)
  redis.call('XADD', KEYS[5], '*', 'o', json)
  redis.call('SET', KEYS[4], json, 'EX', ttl)
  return { 1, json, 0 }
end
