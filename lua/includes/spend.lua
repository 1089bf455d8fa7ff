-- The charge of a redemption, shared by lua/charge-6.lua and lua/hot-charge-7.lua: replay or
-- conflict on the member's key, hydration, the freeze flag, the caller's own checks, spendable
-- points; then lots are consumed earliest-expiry first and the op goes to the outbox and the key's
-- record. Expired-but-unswept lots are never spendable, however late the expire job is.
-- KEYS[1] acct  KEYS[2] lotz  KEYS[3] loth  KEYS[4] idempotency record  KEYS[5] op reference
-- KEYS[6] outbox; ARGV[1..10] as lua/charge-6.lua documents them.

local function chargeArgs(argv)
  return {
    opId = argStr(argv[1], 'opId'),
    uid = argPos(argv[2], 'userId'),
    amount = argPos(argv[3], 'amount'),
    reqHash = argStr(argv[4], 'requestHash'),
    ttl = argPos(argv[5], 'ttl'),
    nowArg = argNow(argv[6]),
    token = argStr(argv[7], 'token'),
    op = argJson(argv[8], 'extra'),
    keyHash = argStr(argv[9], 'keyHash'),
    guarded = memberActs(argv[10]),
  }
end

-- `check(now)` may refuse (returns the reply) before any write; `apply(now)` writes the caller's
-- own state with the charge. Both optional.
local function spend(keys, a, check, apply)
  local prior = replayOrConflict(keys[4], a.reqHash, a.token)
  if prior then return prior end
  if redis.call('EXISTS', keys[1]) == 0 then return { -1 } end
  if a.guarded and isFrozen(keys[1]) then return { -40 } end

  local now = nowMs(a.nowArg)
  if check then
    local refused = check(now)
    if refused then return refused end
  end
  local avail = tonumber(redis.call('HGET', keys[1], 'avail') or '0')
  local expired, firstLive = expiredAndFirstLive(keys[2], keys[3], now)
  local spendable = avail - expired
  if spendable < a.amount then return { -4, spendable } end

  local touched = consumeLots(keys[2], keys[3], now, a.amount, firstLive)
  local after = redis.call('HINCRBY', keys[1], 'avail', -a.amount)
  if apply then apply(now) end

  local op = a.op
  op.opId = a.opId
  op.kind = 'spend'
  op.userId = a.uid
  op.delta = -a.amount
  op.balanceAfter = after
  op.available = spendable - a.amount
  op.lots = touched
  op.at = now
  op.t = a.token
  op.h = a.reqHash
  op.k = a.keyHash
  local json = cjson.encode(op)
  redis.call('XADD', keys[6], '*', 'o', json)
  redis.call('SET', keys[4], json, 'EX', a.ttl)
  redis.call('SET', keys[5], a.keyHash, 'EX', a.ttl)
  return { 1, json, 0 }
end
