-- A whole transfer, for lua/transfer-14.lua (one) and lua/transfer-many-n.lua (several in one
-- call): KEYS and ARGV as transfer-14.lua documents them, its reply as it returns it. Needs the
-- args, now, oprecord, lots, risk, credit, transfer-debit and transfer-credit includes before it.
local function transferOne(KEYS, ARGV)
  local creditArgv = { '', ARGV[14], ARGV[15], ARGV[16], ARGV[17], ARGV[18], ARGV[19] }
  -- every argument, the credit's too, is checked before the first write
  local _, _, _, _, _, receiver = creditArgs(creditArgv)
  if receiver ~= argPos(ARGV[3], 'toUserId') then badArg('toUserId') end

  local reply, id, now, transferJson = debitOne(KEYS, ARGV)
  if not transferJson then return reply end

  creditArgv[1] = transferJson
  local ok, credit = pcall(creditOne, { KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13], KEYS[14] }, creditArgv)
  if ok and credit[1] == 1 then return { 1, reply[2], 0, 1 } end
  keepPending(KEYS[7], KEYS[8], id, now, transferJson)
  return { 1, reply[2], 0, 0 }
end
