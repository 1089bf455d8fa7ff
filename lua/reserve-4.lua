-- reserve: first saga step of a redemption, in the goods slot. Checks the sale, the per-user
-- limit and stock, then holds the units under the op id until charged (confirm) or released.
-- Sold-out requests stop here, touching nothing.
--
-- KEYS[1] goods hash (stock, price, limit, startsAt, endsAt, active)
-- KEYS[2] bought hash userId -> units  KEYS[3] reservations hash opId -> JSON
-- KEYS[4] reservation deadlines zset opId -> ms
-- ARGV[1] opId  ARGV[2] userId  ARGV[3] quantity (>0)  ARGV[4] request hash
-- ARGV[5] timeout ms  ARGV[6] now override ms ('' = Redis TIME)  ARGV[7] new token
-- Returns {1, token, unitPrice, fresh 1|0} | {-2} key reused | {-10} no such goods
--         | {-11} sale not active | {-12, alreadyBought} limit exceeded | {-13, stock} sold out
--@include now
local existing = redis.call('HGET', KEYS[3], ARGV[1])
if existing then
  local r = cjson.decode(existing)
  if r.h ~= ARGV[4] then return { -2 } end
  return { 1, r.t, r.p, 0 }
end

local g = redis.call('HMGET', KEYS[1], 'stock', 'price', 'limit', 'startsAt', 'endsAt', 'active')
if not g[1] then return { -10 } end
local now = nowMs(ARGV[6])
local startsAt, endsAt = tonumber(g[4] or '0'), tonumber(g[5] or '0')
if g[6] ~= '1' or (startsAt > 0 and now < startsAt) or (endsAt > 0 and now >= endsAt) then
  return { -11 }
end
local qty = tonumber(ARGV[3])
local limit = tonumber(g[3] or '0')
local bought = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
if limit > 0 and bought + qty > limit then return { -12, bought } end
local stock = tonumber(g[1])
if stock < qty then return { -13, stock } end

redis.call('HINCRBY', KEYS[1], 'stock', -qty)
redis.call('HINCRBY', KEYS[2], ARGV[2], qty)
local deadline = now + tonumber(ARGV[5])
redis.call('HSET', KEYS[3], ARGV[1], cjson.encode({
  u = tonumber(ARGV[2]), q = qty, p = tonumber(g[2]), t = ARGV[7], h = ARGV[4], d = deadline,
}))
redis.call('ZADD', KEYS[4], deadline, ARGV[1])
return { 1, ARGV[7], tonumber(g[2]), 1 }
