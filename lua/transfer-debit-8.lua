-- transfer-debit: the sender's side of a points transfer, in one atomic step in the sender's slot:
-- checks the business day's limit and the balance, consumes live lots earliest expiry first,
-- appends a spend op (bizType transfer_out, op id = bizId = the transfer id) to the outbox, stores
-- it in the sender's idempotency record, and records the credit still to make in the partition's
-- pending set. The credit (lua/transfer-credit-6.lua, receiver's slot) takes its lots' expiries
-- from `parts`: the consumed lots grouped by expiry, earliest first.
--
-- KEYS[1] acct  KEYS[2] lotz  KEYS[3] loth  KEYS[4] idempotency record of (sender, key)
-- KEYS[5] daily transfer state hash (day, sent)  KEYS[6] outbox
-- KEYS[7] pending transfers zset of the partition  KEYS[8] pending transfers data hash
-- ARGV[1] transfer id (random, fresh per attempt)  ARGV[2] sender id  ARGV[3] receiver id
-- ARGV[4] amount (>0)  ARGV[5] request hash  ARGV[6] record TTL s  ARGV[7] now override ms ('' = TIME)
-- ARGV[8] key hash  ARGV[9] business-day offset ms  ARGV[10] daily maximum (>0)
-- ARGV[11] receiver username  ARGV[12] note ('' = none)  ARGV[13] guard ('' the sender acts: refused while frozen)
-- Returns {1, opJson, replayed 0|1} | {-1} not hydrated | {-2} key reused
--         | {-30, remainingToday} over the daily maximum | {-4, spendable} insufficient points | {-40} sender frozen
--@include args
--@include now
--@include oprecord
--@include lots
--@include risk
--@include transfer-debit
local reply, id, now, transferJson = debitOne(KEYS, ARGV)
if transferJson then keepPending(KEYS[7], KEYS[8], id, now, transferJson) end
return reply
