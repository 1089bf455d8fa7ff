-- The idempotency record lives under (member, hash of the Idempotency-Key) in the member's slot
-- and holds the op that key produced, whose op id is fresh: a key used again after the record
-- expired is a new request with a new op id. A record of kind "aborted" is a tombstone the
-- reservation sweeper writes so a late charge of that reservation token (or any earlier aborted
-- token, listed in `old`) is refused; any other token may overwrite it. A record of kind "claim"
-- marks an admin's key used for a grant (the grant's op lives in the target member's slot).

-- Returns nil when the op may run, or the reply the script must return instead.
local function replayOrConflict(recKey, reqHash, token)
  local raw = redis.call('GET', recKey)
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
