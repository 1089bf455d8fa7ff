-- Argument checks. Every script validates all of its arguments before its first write, so a bad
-- value (a caller's bug) aborts with a BAD_ARGUMENT error reply and nothing written.
local MAX_INT = 9007199254740991

-- An integer as a command argument. Redis turns a Lua number passed to redis.call into text with
-- snprintf("%.17g"), glibc's floating-point path (~2,300 instructions a number); "%d" takes the
-- integer path (~1,800 with string.format's own cost, by callgrind; text already in hand, such as
-- a constant, costs nothing). Only for integers (amounts, ids and times here all are): "%d"
-- truncates a fraction and writes -0 as "0".
local function istr(n)
  return string.format('%d', n)
end

local function badArg(name)
  error({ err = 'BAD_ARGUMENT ' .. name })
end

-- An integer in [min, 2^53-1]; min defaults to 0.
local function argInt(v, name, min)
  local n = tonumber(v)
  if n == nil or n ~= math.floor(n) or n < (min or 0) or n > MAX_INT then badArg(name) end
  return n
end

local function argPos(v, name)
  return argInt(v, name, 1)
end

-- An integer in [min, max].
local function argRange(v, name, min, max)
  local n = argInt(v, name, min)
  if n > max then badArg(name) end
  return n
end

-- Any integer, negative included (a persisted balance may be below zero after a repair).
local function argSigned(v, name)
  local n = tonumber(v)
  if n == nil or n ~= math.floor(n) or n < -MAX_INT or n > MAX_INT then badArg(name) end
  return n
end

local function argStr(v, name)
  if v == nil or v == '' then badArg(name) end
  return v
end

local function argJson(v, name)
  local ok, t = pcall(cjson.decode, v)
  if not ok or type(t) ~= 'table' then badArg(name) end
  return t
end

-- The optional clock override: '' means Redis TIME.
local function argNow(v)
  if v == nil or v == '' then return '' end
  return argInt(v, 'now', 0)
end

-- A decoder of argument text that decodes again only when the text differs from the previous
-- call's in this script call: the calls of a batch (lua/includes/batch.lua) mostly pass the same
-- text (the tier table, the multipliers, the rules). What it returns is shared: read only.
local function textMemo(decode)
  local text, decoded
  return function(v)
    if v ~= nil and v == text then return decoded end
    local d = decode(v)
    text, decoded = v, d
    return d
  end
end
