-- lottery-reserve: first saga step of a draw, in the lottery slot. Checks the lottery is open,
-- picks a prize with the caller's CSPRNG number among the prizes still in stock (an out-of-stock
-- prize leaves the draw and the other weights renormalise), takes one unit of a limited prize and
-- holds it until the draw is charged (confirm) or given up (lottery-release). A hold belongs to
-- (member, Idempotency-Key): concurrent attempts with one key share it — one draw id, one prize —
-- so retries can never roll again for a better prize or hold more than one unit.
--
-- KEYS[1] lottery hash (active, startsAt, endsAt, cost, cooldownMs, daily, prizes JSON)
-- KEYS[2] stock hash <prizeId> -> units left  KEYS[3] holds hash "<userId>:<keyHash>" -> hold JSON
-- KEYS[4] hold deadlines zset "<userId>:<keyHash>" -> ms
-- ARGV[1] draw id for a new hold  ARGV[2] userId  ARGV[3] request hash  ARGV[4] timeout ms
-- ARGV[5] now override ms ('' = Redis TIME)  ARGV[6] token for a new hold  ARGV[7] key hash
-- ARGV[8] random integer in [0, 2^48) from a CSPRNG (the pick is random mod total weight)
-- Returns {1, holdJson, fresh 1|0} | {-2} key reused | {-20} no such lottery in Redis
--         | {-21} not active (switched off or outside its window) | {-22} every prize is gone
-- Hold JSON: {u, k, o = draw id, t = token, h, d = deadline, c = cost, cd = cooldown ms,
--   dl = daily limit (0 none), p = prize {id, name, kind, points, goodsId, weight, limited}}
--@include args
--@include now
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

local l = redis.call('HMGET', KEYS[1], 'active', 'startsAt', 'endsAt', 'prizes', 'cost', 'cooldownMs', 'daily')
if not l[4] then return { -20 } end
local now = nowMs(nowArg)
local startsAt, endsAt = tonumber(l[2] or '0'), tonumber(l[3] or '0')
if l[1] ~= '1' or (startsAt > 0 and now < startsAt) or (endsAt > 0 and now >= endsAt) then return { -21 } end

local prizes = cjson.decode(l[4])
local weights = {}
local total = 0
for i, p in ipairs(prizes) do
  local w = p.weight
  if p.limited == 1 and tonumber(redis.call('HGET', KEYS[2], tostring(p.id)) or '0') <= 0 then w = 0 end
  weights[i] = w
  total = total + w
end
if total == 0 then return { -22 } end
local pick = rand % total
local chosen
for i, p in ipairs(prizes) do
  if pick < weights[i] then
    chosen = p
    break
  end
  pick = pick - weights[i]
end

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
