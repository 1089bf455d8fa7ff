-- The sender's side of a points transfer, for lua/transfer-debit-8.lua (the saga's first step) and
-- lua/transfer-14.lua (the whole transfer at once): KEYS and ARGV as transfer-debit-8.lua documents
-- them. Needs the args, now, oprecord, lots and risk includes before it.
--
-- debitOne writes everything of the debit but the pending credit, and returns its reply; when it
-- debited (not a refusal, not a replay) also the transfer id, the debit's time and the transfer as
-- JSON, for keepPending or the credit.
local function debitOne(KEYS, ARGV)
  local id = argStr(ARGV[1], 'transferId')
  local from = argPos(ARGV[2], 'fromUserId')
  local to = argPos(ARGV[3], 'toUserId')
  if from == to then badArg('toUserId') end
  local amount = argPos(ARGV[4], 'amount')
  local reqHash = argStr(ARGV[5], 'requestHash')
  local ttl = argPos(ARGV[6], 'ttl')
  local nowArg = argNow(ARGV[7])
  local keyHash = argStr(ARGV[8], 'keyHash')
  local offset = argSigned(ARGV[9], 'dayOffsetMs')
  local dailyMax = argPos(ARGV[10], 'dailyMax')
  local toUsername = argStr(ARGV[11], 'toUsername')
  local note = ARGV[12] or ''

  local prior = replayOrConflict(KEYS[4], reqHash, nil)
  if prior then return prior end
  if redis.call('EXISTS', KEYS[1]) == 0 then return { -1 } end
  if memberActs(ARGV[13]) and isFrozen(KEYS[1]) then return { -40 } end

  local now = nowMs(nowArg)
  local day = math.floor((now + offset) / 86400000)
  local s = redis.call('HMGET', KEYS[5], 'day', 'sent')
  local sent = 0
  if tonumber(s[1]) == day then sent = tonumber(s[2] or '0') end
  if sent + amount > dailyMax then return { -30, math.max(0, dailyMax - sent) } end
  local avail = tonumber(redis.call('HGET', KEYS[1], 'avail') or '0')
  local expired, firstLive = expiredAndFirstLive(KEYS[2], KEYS[3], now)
  local spendable = avail - expired
  -- every point moved carries its lot's expiry: only points held in live lots can move (they equal
  -- the balance unless the balance drifted from its lots, which reconcile repairs)
  local inLots = -expired
  for _, v in ipairs(redis.call('HVALS', KEYS[3])) do inLots = inLots + tonumber(v) end
  if math.min(spendable, inLots) < amount then return { -4, math.min(spendable, inLots) } end

  -- every check passed: write
  local touched = consumeLots(KEYS[2], KEYS[3], now, amount, firstLive)
  local after = redis.call('HINCRBY', KEYS[1], 'avail', -amount)
  redis.call('HSET', KEYS[5], 'day', day, 'sent', sent + amount)
  redis.call('PEXPIRE', KEYS[5], 172800000)

  -- touched lots come earliest expiry first: equal expiries are adjacent
  local parts = {}
  for _, t in ipairs(touched) do
    local last = parts[#parts]
    if last and last[1] == t[3] then
      last[2] = last[2] + t[2]
    else
      parts[#parts + 1] = { t[3], t[2] }
    end
  end
  local transfer = { id = id, from = from, to = to, toUsername = toUsername, amount = amount, parts = parts, at = now, day = day }
  if note ~= '' then transfer.note = note end

  local op = {
    opId = id, kind = 'spend', userId = from, delta = -amount, balanceAfter = after, available = spendable - amount,
    bizType = 'transfer_out', bizId = id, lots = touched, at = now, h = reqHash, k = keyHash, transfer = transfer,
  }
  local json = cjson.encode(op)
  redis.call('XADD', KEYS[6], '*', 'o', json)
  redis.call('SET', KEYS[4], json, 'EX', ttl)
  return { 1, json, 0 }, id, now, cjson.encode(transfer)
end

-- The credit still to make, on the partition's pending set (KEYS[7], KEYS[8] of the debit): what the
-- completer (src/transfers/service.ts) finishes if nothing else does.
local function keepPending(pendingKey, pendingDataKey, id, now, transferJson)
  redis.call('ZADD', pendingKey, now, id)
  redis.call('HSET', pendingDataKey, id, transferJson)
end
