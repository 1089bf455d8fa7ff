-- What the scripts that take or quote units decide alike about a goods item: whether its sale is
-- open, the units a member has counted on a business day, whether a member may take units now,
-- and the unit price.

-- Open when switched on and inside the window (0 = no bound).
local function saleOpen(active, startsAt, endsAt, now)
  local s, e = tonumber(startsAt or '0'), tonumber(endsAt or '0')
  return active == '1' and not (s > 0 and now < s) and not (e > 0 and now >= e)
end

-- A member's daily count is stored as "<business day>:<units>"; another day's count is 0, so a
-- count resets when the business day turns without anything having to clear it.
local function unitsOn(raw, day)
  if not raw then return 0 end
  local d, n = string.match(raw, '^(%-?%d+):(%d+)$')
  if tonumber(d) ~= day then return 0 end
  return tonumber(n)
end

-- The checks every script that takes units from a goods hash makes, in this order: the sale is
-- open, the member's limit (counted in boughtKey), the daily limit (counted in dailyKey), stock. `g` is
-- the goods hash read as HMGET stock, price, limit, startsAt, endsAt, active, daily, dyn.
-- Returns the refusal reply, or nil followed by what the write needs: stock, day, today, daily.
local function unitsRefused(g, boughtKey, dailyKey, uid, qty, now, offset)
  if not saleOpen(g[6], g[4], g[5], now) then return { -11 } end
  local limit = tonumber(g[3] or '0')
  if limit > 0 then
    local bought = tonumber(redis.call('HGET', boughtKey, istr(uid)) or '0')
    if bought + qty > limit then return { -12, bought } end
  end
  local daily = tonumber(g[7] or '0')
  local day = math.floor((now + offset) / 86400000)
  local today = 0
  if daily > 0 then
    today = unitsOn(redis.call('HGET', dailyKey, istr(uid)), day)
    if today + qty > daily then return { -14, today } end
  end
  local stock = tonumber(g[1])
  if stock < qty then return { -13, stock } end
  return nil, stock, day, today, daily
end

-- Stock factor in tenths, from the units left before a sale takes any: 1.2 below 10, 1.1 below 50.
local function stockFactor(stock)
  if stock < 10 then return 12 end
  if stock < 50 then return 11 end
  return 10
end

-- The unit price: round half up(base × tier/1000 × campaign/1000 × stock factor/10), at least 1.
-- Exact in doubles: base ≤ 10^9 and both per-mille factors ≤ 1000, so base × tier × campaign ≤
-- 10^15 < 2^53; dividing by 10^7 is split into quotient and remainder so no product exceeds it.
local function unitPrice(base, tierPm, campaignPm, sf10)
  local d = 10000000
  local a = base * tierPm * campaignPm
  local q = math.floor(a / d)
  local r = a - q * d
  return math.max(1, q * sf10 + math.floor((r * sf10 + d / 2) / d))
end

-- The factors a goods item is priced with: tier always; campaign and stock only with dynamic pricing.
local function priceOf(base, dyn, stock, tierPm, campaignPm)
  if dyn ~= '1' then return unitPrice(base, tierPm, 1000, 10), 1000, 10 end
  local sf = stockFactor(stock)
  return unitPrice(base, tierPm, campaignPm, sf), campaignPm, sf
end
