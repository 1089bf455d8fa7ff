-- goods-set: writes a goods item's sale settings; stock is set only when the item is new
-- (afterwards it moves only through reserve/release/restock).
--
-- KEYS[1] goods hash
-- ARGV[1] price  ARGV[2] per-user limit (0 none)  ARGV[3] startsAt ms (0 none)
-- ARGV[4] endsAt ms (0 none)  ARGV[5] active 1|0  ARGV[6] initial stock
-- ARGV[7] units per member per business day (0 none)  ARGV[8] dynamic pricing 1|0
-- Returns the live stock
--@include args
argPos(ARGV[1], 'price')
argInt(ARGV[2], 'limit')
argInt(ARGV[3], 'startsAt')
argInt(ARGV[4], 'endsAt')
if ARGV[5] ~= '0' and ARGV[5] ~= '1' then badArg('active') end
argInt(ARGV[6], 'stock')
argInt(ARGV[7], 'dailyLimit')
if ARGV[8] ~= '0' and ARGV[8] ~= '1' then badArg('dynamic') end
redis.call('HSET', KEYS[1], 'price', ARGV[1], 'limit', ARGV[2], 'startsAt', ARGV[3],
  'endsAt', ARGV[4], 'active', ARGV[5], 'daily', ARGV[7], 'dyn', ARGV[8])
redis.call('HSETNX', KEYS[1], 'stock', ARGV[6])
return tonumber(redis.call('HGET', KEYS[1], 'stock'))
