-- The loop of the <name>-many-n.lua scripts: several calls of one script's body in one EVALSHA.
-- The number of keys comes first (`EVALSHA sha numkeys …`): KEYS holds `nkeys` keys per call and
-- ARGV[1] the count n, then `nargs` arguments per call. The calls run one after the other in the
-- order given, each exactly as the script alone would run it, and the reply holds one reply per
-- call: the body's own, or {0, message} where that call raised an error (a bad argument, Redis out
-- of memory at its first write…), which ends only that call — an error before its first write
-- leaves nothing of it, as the script alone would.
local function runMany(body, nkeys, nargs)
  local n = argPos(ARGV[1], 'count')
  if #KEYS ~= nkeys * n or #ARGV ~= 1 + nargs * n then badArg('count') end
  local out = {}
  for i = 0, n - 1 do
    local k, a = {}, {}
    for j = 1, nkeys do k[j] = KEYS[nkeys * i + j] end
    for j = 1, nargs do a[j] = ARGV[1 + nargs * i + j] end
    local ok, reply = pcall(body, k, a)
    if not ok then
      if type(reply) == 'table' and reply.err then reply = reply.err end
      reply = { 0, tostring(reply) }
    end
    out[i + 1] = reply
  end
  return out
end
