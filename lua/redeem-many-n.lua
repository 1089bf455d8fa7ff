-- redeem-many: several whole redemptions in one call, for a Redis that is ONE node (as
-- lua/redeem-9.lua). The API gathers the redemptions that reach it in one turn of its event loop
-- and sends them here together (src/redemptions/redeem-batch.ts): the call's fixed cost (the
-- command, the script's setup, the tier table's decoding) is paid once for the batch. Each
-- redemption runs exactly as redeem-9.lua would run it alone, one after the other in the order
-- given, so the batch decides what the same calls in that order would decide.
--
-- The number of keys comes first (`EVALSHA sha numkeys …`, 9 per redemption).
-- KEYS[9i+1 … 9i+9] the keys of redemption i, as redeem-9.lua takes them
-- ARGV[1] n, the number of redemptions  ARGV[2+13i … 14+13i] the arguments of redemption i
-- Returns one reply per redemption, in order: redeem-9.lua's reply, or {0, message} where that
-- redemption raised an error (a bad argument, Redis out of memory…) — which ends only that one:
-- an error before its first write leaves nothing of it, as redeem-9.lua's would.
--@include args
--@include now
--@include sale
--@include oprecord
--@include lots
--@include risk
--@include redeem
local n = argPos(ARGV[1], 'count')
if #KEYS ~= 9 * n or #ARGV ~= 1 + 13 * n then badArg('count') end
local out = {}
for i = 0, n - 1 do
  local k, a = {}, {}
  for j = 1, 9 do k[j] = KEYS[9 * i + j] end
  for j = 1, 13 do a[j] = ARGV[1 + 13 * i + j] end
  local ok, reply = pcall(redeemOne, k, a)
  if not ok then
    if type(reply) == 'table' and reply.err then reply = reply.err end
    reply = { 0, tostring(reply) }
  end
  out[i + 1] = reply
end
return out
