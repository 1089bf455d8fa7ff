-- Milliseconds since epoch from Redis TIME, so every API host agrees on "now".
-- Tests pass an explicit override (a fake clock) instead; callers validate it with argNow first.
local function nowMs(override)
  if override ~= nil and override ~= '' then return tonumber(override) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
