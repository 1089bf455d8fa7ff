-- restock: brings a goods item's live stock up to what Postgres has stocked.
--
-- goods.total_stock in Postgres only grows (creation, restocks), and restocks of one item commit
-- in the order of their totals (each holds the row lock until it commits). The hash's `stocked`
-- field is the total its live stock already counts, a high-water mark: raising it to a committed
-- total adds the difference once, whoever brings it (the restock request, its replay after a
-- crash, a later re-sync) and in whatever order, with no per-restock state to keep.
-- A hash without `stocked` was built from Postgres (item created, hydrated, rebuilt), so its stock
-- already counts what Postgres had then: the total given is taken as counted. If that is wrong,
-- the stock is short (reconcile moves it up), never more than was stocked.
--
-- KEYS[1] goods hash
-- ARGV[1] total stocked per Postgres (integer >= 0, committed)
-- Returns the live stock | -10 no such goods (a malformed total: BAD_ARGUMENT, nothing written)
--@include args
local total = argInt(ARGV[1], 'total')
if redis.call('EXISTS', KEYS[1]) == 0 then return -10 end
local stocked = tonumber(redis.call('HGET', KEYS[1], 'stocked'))
if stocked == nil then
  redis.call('HSET', KEYS[1], 'stocked', ARGV[1])
elseif total > stocked then
  redis.call('HINCRBY', KEYS[1], 'stock', total - stocked)
  redis.call('HSET', KEYS[1], 'stocked', ARGV[1])
end
return tonumber(redis.call('HGET', KEYS[1], 'stock'))
