-- abort: the sweeper's first step for an expired reservation. Either the op was charged (return
-- it, the reservation is confirmed) or a tombstone makes a late charge with that token fail.
--
-- KEYS[1] op record (user slot)
-- ARGV[1] reservation token  ARGV[2] tombstone TTL s
-- Returns {1, opJson} charged | {0} aborted (tombstone {kind, t[, old = earlier tokens]} written)
local tomb = { kind = 'aborted', t = ARGV[1] }
local raw = redis.call('GET', KEYS[1])
if raw then
  local rec = cjson.decode(raw)
  if rec.kind ~= 'aborted' then return { 1, raw } end
  -- an earlier reservation's token stays refused (in `old`): else a retry's abort would let the
  -- stalled charge of a reservation already released go through
  local old = rec.old or {}
  if rec.t ~= ARGV[1] then old[#old + 1] = rec.t end
  if #old > 0 then tomb.old = old end
end
redis.call('SET', KEYS[1], cjson.encode(tomb), 'EX', tonumber(ARGV[2]))
return { 0 }
