-- A whole draw, for lua/draw-at-once-9.lua (one) and lua/draw-at-once-many-n.lua (several in one
-- call): KEYS and ARGV as draw-at-once-9.lua documents them, its reply as it returns it. Needs the
-- args, now, oprecord, lots, risk, lottery-reserve and draw includes before it.
local function drawAtOnceOne(KEYS, ARGV)
  local drawId = argStr(ARGV[1], 'drawId')
  local uid = argPos(ARGV[2], 'userId')
  local reqHash = argStr(ARGV[3], 'requestHash')
  local ttl = argPos(ARGV[4], 'ttl')
  local nowArg = argNow(ARGV[5])
  local token = argStr(ARGV[6], 'token')
  local keyHash = argStr(ARGV[7], 'keyHash')
  local lotteryId = argPos(ARGV[8], 'lotteryId')
  local rand = argInt(ARGV[9], 'random')
  if rand >= 281474976710656 then badArg('random') end
  local offset = argSigned(ARGV[10], 'dayOffsetMs')
  local lifetime = argPos(ARGV[11], 'lifetimeMs')
  local exchangeNo = argStr(ARGV[12], 'exchangeNo')
  memberActs(ARGV[13])

  -- the key's record first: a draw already made under it (a concurrent duplicate, a resend) is
  -- replayed — or the key reused for another request refused — whatever the lottery's state now,
  -- as the saga's duplicates share the first one's hold
  local prior = replayOrConflict(KEYS[6], reqHash, token)
  if prior then return prior end
  local l, chosen = pickPrize(KEYS[1], KEYS[2], nowMs(nowArg), rand)
  if not l then return chosen end
  -- the prize as the draw records it (the saga's API sends the same: src/lottery/store.ts prizeOf)
  local prize = { id = chosen.id, name = chosen.name, kind = chosen.kind }
  if chosen.kind == 'points' then prize.points = chosen.points end
  if chosen.kind == 'goods' then prize.goodsId = chosen.goodsId end
  local reply = drawOne(
    { KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9] },
    { drawId, ARGV[2], reqHash, ARGV[4], ARGV[5], token, keyHash, ARGV[8], l[5], l[6] or '0', l[7] or '0', ARGV[10],
      cjson.encode(prize), ARGV[11], chosen.kind == 'goods' and exchangeNo or '', ARGV[13] }
  )
  -- drawn now (not refused, not a replay): a limited prize's unit is taken, with no hold between
  if reply[1] == 1 and reply[3] == 0 and chosen.limited == 1 then
    redis.call('HINCRBY', KEYS[2], tostring(chosen.id), -1)
  end
  -- a daily limit refused: the lottery's limit too, for the message (the saga's API has it from the hold)
  if reply[1] == -3 then reply[3] = tonumber(l[7]) end
  return reply
end
