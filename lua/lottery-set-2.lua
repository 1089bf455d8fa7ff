-- lottery-set: brings a lottery's Redis state to a Postgres row: its settings (only if this
-- version is not older than the one in Redis, so a late sync never undoes a newer one) and the
-- stock of its limited prizes. A prize's allocated stock only grows in Postgres; `stocked:<id>`
-- is the allocation the live count already includes (a high-water mark, as for goods restocks),
-- so raising it adds the difference once, whoever syncs and in whatever order.
--
-- KEYS[1] lottery hash  KEYS[2] stock hash
-- ARGV[1] version (>0)  ARGV[2] active 1|0  ARGV[3] startsAt ms (0 none)  ARGV[4] endsAt ms (0 none)
-- ARGV[5] cost (>0)  ARGV[6] cooldown ms  ARGV[7] daily draw limit (0 none)
-- ARGV[8] prizes JSON: non-empty array of {id, name, kind points|goods|none, points, goodsId,
--         weight (>0), limited 1|0}
-- ARGV[9] 1 = write only if the lottery is absent from Redis (loading it), 0 = sync
-- ARGV[10..] per limited prize: prizeId, units allocated, units left per the record (used only
--         when Redis has no count for the prize yet)
-- Returns 1 written | 0 already present (ARGV[9] = 1)
--@include args
local version = argPos(ARGV[1], 'version')
if ARGV[2] ~= '0' and ARGV[2] ~= '1' then badArg('active') end
argInt(ARGV[3], 'startsAt')
argInt(ARGV[4], 'endsAt')
argPos(ARGV[5], 'cost')
argInt(ARGV[6], 'cooldownMs')
argInt(ARGV[7], 'daily')
local prizes = argJson(ARGV[8], 'prizes')
if #prizes == 0 then badArg('prizes') end
for _, p in ipairs(prizes) do
  if type(p) ~= 'table' then badArg('prizes') end
  argPos(p.id, 'prizes')
  argPos(p.weight, 'prizes')
  if type(p.name) ~= 'string' or p.name == '' then badArg('prizes') end
  if p.kind ~= 'points' and p.kind ~= 'goods' and p.kind ~= 'none' then badArg('prizes') end
  if p.kind == 'points' then argPos(p.points, 'prizes') end
  if p.kind == 'goods' then argPos(p.goodsId, 'prizes') end
  if p.limited ~= 0 and p.limited ~= 1 then badArg('prizes') end
end
if ARGV[9] ~= '0' and ARGV[9] ~= '1' then badArg('onlyIfAbsent') end
if (#ARGV - 9) % 3 ~= 0 then badArg('stock') end
for i = 10, #ARGV, 3 do
  argPos(ARGV[i], 'prizeId')
  argInt(ARGV[i + 1], 'stocked')
  argInt(ARGV[i + 2], 'left')
end

if ARGV[9] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version >= current then
  redis.call('HSET', KEYS[1], 'version', ARGV[1], 'active', ARGV[2], 'startsAt', ARGV[3], 'endsAt', ARGV[4],
    'cost', ARGV[5], 'cooldownMs', ARGV[6], 'daily', ARGV[7], 'prizes', ARGV[8])
end
for i = 10, #ARGV, 3 do
  local id, total = ARGV[i], tonumber(ARGV[i + 1])
  local stocked = tonumber(redis.call('HGET', KEYS[2], 'stocked:' .. id))
  if stocked == nil then
    if redis.call('HEXISTS', KEYS[2], id) == 0 then redis.call('HSET', KEYS[2], id, ARGV[i + 2]) end
    redis.call('HSET', KEYS[2], 'stocked:' .. id, ARGV[i + 1])
  elseif total > stocked then
    redis.call('HINCRBY', KEYS[2], id, total - stocked)
    redis.call('HSET', KEYS[2], 'stocked:' .. id, ARGV[i + 1])
  end
end
return 1
