-- Credits: a new lot, the balance, the lifetime earned that sets the tier, and the tier itself.
--
-- A rule earn is multiplied by the member's tier and the campaign (both in thousandths), floored;
-- the tier used is the one the member had BEFORE this earn, so the earn that crosses a threshold
-- is paid at the old rate and the upgrade is atomic with it. Tiers only go up.
-- `m` (decoded from the caller's JSON): { tiers = {min, ...} ascending, earn = {per-mille, ...},
--   applyTier = 0|1, campaign = per-mille (1000 = none), lifetime = 0|1 (counts toward the tier) }

-- The tier index (0-based) a lifetime total reaches.
local function tierFor(tiers, earned)
  local t = 0
  for i = 1, #tiers do
    if earned >= tiers[i] then t = i - 1 end
  end
  return t
end

-- Validates the multiplier spec before any write.
local function argMultipliers(v)
  local m = argJson(v, 'multipliers')
  if type(m.tiers) ~= 'table' or type(m.earn) ~= 'table' or #m.tiers ~= #m.earn or #m.tiers == 0 then badArg('multipliers') end
  for i = 1, #m.tiers do
    argInt(m.tiers[i], 'multipliers')
    argPos(m.earn[i], 'multipliers')
  end
  argPos(m.campaign, 'multipliers')
  return m
end

-- Points this credit pays and the member's tier before it: {points, tierBefore, perMille}.
local function creditAmount(acct, base, m)
  local a = redis.call('HMGET', acct, 'earned', 'tier')
  local earned = tonumber(a[1] or '0')
  local tier = tonumber(a[2] or tostring(tierFor(m.tiers, earned)))
  local perMille = m.campaign
  -- a tier past the table (sent by a process whose cached table is older than the one the member
  -- reached it under) pays the table's top tier, as the API prices it (EngagementConfig.tierAt)
  if m.applyTier == 1 then perMille = math.floor(m.earn[math.min(tier, #m.earn - 1) + 1] * m.campaign / 1000) end
  return math.floor(base * perMille / 1000), tier, perMille
end

-- Writes the lot and the balance; raises lifetime earned and the tier when the credit counts.
-- Returns avail after, tier after.
local function creditLot(acct, lotz, loth, expidx, uid, lotId, points, expiresAt, tierBefore, m)
  redis.call('ZADD', lotz, expiresAt, lotId)
  redis.call('HSET', loth, lotId, points)
  redis.call('ZADD', expidx, 'LT', expiresAt, uid)
  local avail = redis.call('HINCRBY', acct, 'avail', points)
  local tierAfter = tierBefore
  if m.lifetime == 1 then
    local earned = redis.call('HINCRBY', acct, 'earned', points)
    tierAfter = math.max(tierBefore, tierFor(m.tiers, earned))
  end
  if tierAfter ~= tierBefore or redis.call('HEXISTS', acct, 'tier') == 0 then
    redis.call('HSET', acct, 'tier', tierAfter)
  end
  return avail, tierAfter
end
