-- The op record (idempotency) lives under the op id in the user's slot. A record of kind
-- "aborted" is a tombstone the reservation sweeper writes so a late charge of that reservation
-- token (or any earlier aborted token, listed in `old`) is refused; any other token may overwrite it.

-- Returns nil when the op may run, or the reply the script must return instead.
local function replayOrConflict(opKey, reqHash, token)
  local raw = redis.call('GET', opKey)
  if not raw then return nil end
  local rec = cjson.decode(raw)
  if rec.kind == 'aborted' then
    if token ~= nil and token ~= '' then
      if rec.t == token then return { -5 } end
      for _, t in ipairs(rec.old or {}) do
        if t == token then return { -5 } end
      end
    end
    return nil
  end
  if rec.h ~= reqHash then return { -2 } end
  return { 1, raw, 1 }
end
