-- repair-stock: reconcile's stock repair, applied only if the stock is still what reconcile
-- measured (compare-and-set): a sale or a second reconciler moving it meanwhile makes this a no-op,
-- so a repair never applies twice and never undoes a sale.
--
-- KEYS[1] goods hash
-- ARGV[1] stock measured  ARGV[2] correction (signed, non-zero)
-- Returns the new stock | -1 stock moved since it was measured (nothing written) | -10 no such goods
--@include args
local measured = argInt(ARGV[1], 'measured')
local delta = argSigned(ARGV[2], 'delta')
if delta == 0 then badArg('delta') end
local cur = redis.call('HGET', KEYS[1], 'stock')
if not cur then return -10 end
if tonumber(cur) ~= measured then return -1 end
return redis.call('HINCRBY', KEYS[1], 'stock', delta)
