-- abort: settles a reservation whose charge is unknown (the sweeper, or a failed charge). Either
-- the member's key holds a charged op (returned: the caller confirms the reservation if that op
-- carries its op id and token, else releases it), or a tombstone makes a late charge with this
-- token fail.
--
-- KEYS[1] idempotency record of (member, key) (user slot)
-- ARGV[1] reservation token  ARGV[2] tombstone TTL s
-- Returns {1, opJson} charged | {0} aborted (tombstone {kind, t[, old = earlier tokens]} written)
--@include args
local token = argStr(ARGV[1], 'token')
local ttl = argPos(ARGV[2], 'ttl')
local tomb = { kind = 'aborted', t = token }
local raw = redis.call('GET', KEYS[1])
if raw then
  local rec = cjson.decode(raw)
  if rec.kind ~= 'aborted' then return { 1, raw } end
  -- an earlier reservation's token stays refused (in `old`): else a retry's abort would let the
  -- stalled charge of a reservation already released go through
  local old = rec.old or {}
  if rec.t ~= token then old[#old + 1] = rec.t end
  if #old > 0 then tomb.old = old end
end
redis.call('SET', KEYS[1], cjson.encode(tomb), 'EX', ttl)
return { 0 }
