-- restock: adds units to a goods item's live stock.
--
-- KEYS[1] goods hash   ARGV[1] quantity (>0)
-- Returns the new stock | -10 no such goods
if redis.call('EXISTS', KEYS[1]) == 0 then return -10 end
return redis.call('HINCRBY', KEYS[1], 'stock', tonumber(ARGV[1]))
