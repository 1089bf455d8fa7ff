-- abort: the sweeper's first step for an expired reservation. Either the op was charged (return
-- it, the reservation is confirmed) or a tombstone makes a late charge with that token fail.
--
-- KEYS[1] op record (user slot)
-- ARGV[1] reservation token  ARGV[2] tombstone TTL s
-- Returns {1, opJson} charged | {0} aborted (tombstone written)
local raw = redis.call('GET', KEYS[1])
if raw then
  local rec = cjson.decode(raw)
  if rec.kind ~= 'aborted' then return { 1, raw } end
end
redis.call('SET', KEYS[1], cjson.encode({ kind = 'aborted', t = ARGV[1] }), 'EX', tonumber(ARGV[2]))
return { 0 }
