-- transfer: a whole points transfer in one atomic step, for a Redis that is ONE node (the sender's
-- and the receiver's slots in one script): lua/transfer-debit-8.lua's debit, then
-- lua/transfer-credit-6.lua's credit of the transfer it recorded, with nothing left pending. What
-- the saga (debit → credit → done) does when nothing interrupts it, in one call instead of three.
-- A credit it cannot make (the receiver not in Redis, an error) leaves the transfer on the pending
-- set, as a debit alone does, for the caller (or the completer) to credit.
--
-- KEYS[1..8] transfer-debit-8.lua's (the sender's)  KEYS[9..14] transfer-credit-6.lua's (the receiver's:
-- acct, lotz, loth, idempotency record of the credit, outbox, expiry index)
-- ARGV[1..13] transfer-debit-8.lua's  ARGV[14..19] transfer-credit-6.lua's ARGV[2..7] (request hash,
-- TTL, now override, key hash, multipliers, receiver id = ARGV[3])
-- Returns transfer-debit-8.lua's reply; a transfer debited now adds a 4th element: 1 credited, 0
-- left pending.
--@include args
--@include now
--@include oprecord
--@include lots
--@include risk
--@include credit
--@include transfer-debit
--@include transfer-credit
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
