-- Risk control inside the scripts (src/risk/): the member's account hash carries the freeze flag
-- (`rs` = 'f') and the counters the in-script rules need, so a check and the write it guards are
-- one atomic step and no path around them exists.
--   rs              'f' while the member is frozen (admin, or the DAILY_GAIN rule)
--   gd, gp          business day and points counted toward DAILY_GAIN that day
--   eb              ms of the member's recent earns (EARN_BURST's sliding window), comma-separated
--   hf:<bizType>    "<hour>:<count>" of a member action this hour (HIGH_FREQUENCY)

-- A guard argument: '' / nil (the member acts: a frozen member is refused) or 'system'.
local function memberActs(v)
  if v == nil or v == '' then return true end
  if v == 'system' then return false end
  badArg('guard')
end

local function isFrozen(acct)
  return redis.call('HGET', acct, 'rs') == 'f'
end

-- Validates a risk spec (src/risk/rules.ts inScriptSpec) before any write:
-- { m = 0|1 member acts, c = 0|1 counts toward DAILY_GAIN, g = DAILY_GAIN threshold (0 off),
--   h = HIGH_FREQUENCY per hour (0 off), b = EARN_BURST count (0 off), bw = its window ms, ip, ua }
local function argRisk(v)
  if v == nil or v == '' then return { m = 1, c = 0, g = 0, h = 0, b = 0, bw = 60000 } end
  local r = argJson(v, 'risk')
  for _, k in ipairs({ 'm', 'c', 'g', 'h', 'b', 'bw' }) do
    r[k] = argInt(r[k] or 0, 'risk')
  end
  return r
end

-- EARN_BURST: refuses when the window already holds `b` earns. Returns (ok, retryAfterMs, kept list).
local function burstCheck(acct, r, now)
  if r.m ~= 1 or r.b <= 0 then return true, 0, nil end
  local kept = {}
  for t in string.gmatch(redis.call('HGET', acct, 'eb') or '', '[^,]+') do
    local ms = tonumber(t)
    if ms and ms > now - r.bw then kept[#kept + 1] = ms end
  end
  if #kept >= r.b then return false, kept[1] + r.bw - now, kept end
  return true, 0, kept
end

-- After the checks: records the earn in the burst window, counts the hour's actions and the day's
-- gain; freezes the member when this credit crosses DAILY_GAIN. Returns the risk finding or nil.
local function riskAfterCredit(acct, r, kept, now, day, bizType, points)
  local finding = nil
  if kept then
    kept[#kept + 1] = now
    redis.call('HSET', acct, 'eb', table.concat(kept, ','))
  end
  if r.m == 1 and r.h > 0 then
    local hour = math.floor(now / 3600000)
    local field = 'hf:' .. bizType
    local raw = redis.call('HGET', acct, field)
    local n = 0
    if raw then
      local hh, c = string.match(raw, '^(%d+):(%d+)$')
      if tonumber(hh) == hour then n = tonumber(c) end
    end
    n = n + 1
    redis.call('HSET', acct, field, hour .. ':' .. n)
    if n == r.h + 1 then finding = { rule = 'HIGH_FREQUENCY', activity = bizType, count = n, threshold = r.h } end
  end
  if r.c == 1 and r.g > 0 then
    local g = redis.call('HMGET', acct, 'gd', 'gp')
    local before = 0
    if tonumber(g[1]) == day then before = tonumber(g[2] or '0') end
    local after = before + points
    redis.call('HSET', acct, 'gd', day, 'gp', after)
    if before <= r.g and after > r.g and not isFrozen(acct) then
      redis.call('HSET', acct, 'rs', 'f')
      finding = { rule = 'DAILY_GAIN', gained = after, threshold = r.g, action = 'freeze' }
    end
  end
  if finding then
    finding.ip = r.ip
    finding.ua = r.ua
  end
  return finding
end
