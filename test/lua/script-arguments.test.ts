/**
 * Issue 6, item 16 (and the lottery scripts of issue 7, the transfer scripts of issue 8): scripts do not trust their callers. Every script validates every argument
 * before its first write: a bad value (a caller's bug) is a BAD_ARGUMENT error reply and leaves
 * Redis exactly as it was — never a script that fails half-way after a write.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import type { Keys } from '../../src/redis/keys.ts';
import { DAY, T0, goodsSet, hydrateLots, luaEnv, snapshot, type LuaEnv } from './support.ts';

let env: LuaEnv;
beforeAll(() => {
  env = luaEnv();
});
afterAll(async () => env?.close());

const U = 41;
const G = 7;

type Call = (r: Redis, k: Keys) => Promise<unknown>;

const earnArgs = (over: Record<number, string | number>) => {
  const argv: Array<string | number> = ['op1', U, 10, 'share', '1', 0, 0, DAY, 'h', 3600, T0, '{}', 'kh1', 0, '{"tiers":[0],"earn":[1000],"applyTier":0,"campaign":1000,"lifetime":1}'];
  for (const [i, v] of Object.entries(over)) argv[Number(i)] = v;
  return argv;
};
const earn = (over: Record<number, string | number>): Call => (r, k) =>
  r.pmEarn(k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, 'kh1'), k.dailyCap(U, 'share'), k.outboxOf(U), k.expiryIndexOf(U), ...earnArgs(over));

const chargeArgs = (over: Record<number, string | number>) => {
  const argv: Array<string | number> = ['op2', U, 10, 'h', 3600, T0, 'tok', '{"goodsId":7}', 'kh2'];
  for (const [i, v] of Object.entries(over)) argv[Number(i)] = v;
  return argv;
};
const charge = (over: Record<number, string | number>): Call => (r, k) =>
  r.pmCharge(k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, 'kh2'), k.opRef(U, 'op2'), k.outboxOf(U), ...chargeArgs(over));

const reserveArgs = (over: Record<number, string | number>) => {
  const argv: Array<string | number> = ['op3', U, 1, 'h', 15_000, T0, 'tok', 'kh3', 1000, 1000, 0, ''];
  for (const [i, v] of Object.entries(over)) argv[Number(i)] = v;
  return argv;
};
const reserve = (over: Record<number, string | number>): Call => (r, k) =>
  r.pmReserve(k.goods(G), k.bought(G), k.reservations(G), k.reservationDeadlines(G), k.dailyBought(G), ...reserveArgs(over));

const TIERS = '{"min":[0],"pm":[1000]}';
const redeem = (over: Record<number, string | number>): Call => (r, k) =>
  r.pmRedeem(k.goods(G), k.bought(G), k.dailyBought(G), k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, 'kh9'), k.opRef(U, 'op9'), k.outboxOf(U),
    ...withOver(['op9', U, 1, 'h', 3600, T0, 'tok', 'kh9', TIERS, 1000, 0, '', '{"goodsId":7}'], over));

const withOver = (argv: Array<string | number>, over: Record<number, string | number>) => {
  const out = [...argv];
  for (const [i, v] of Object.entries(over)) out[Number(i)] = v;
  return out;
};
const hold = (over: Record<number, string | number>): Call => (r, k) =>
  r.pmHold(k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.hold(U, 'H1'), k.outboxOf(U),
    ...withOver(['fz1', U, 10, 'H1', 'hold', 'why', T0, 0, '{}', 'h'], over));
const holdSettle = (over: Record<number, string | number>): Call => (r, k) =>
  r.pmHoldSettle(k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.hold(U, 'held'), k.outboxOf(U), k.expiryIndexOf(U),
    ...withOver(['capture', 'st1', U, 5, T0, DAY, '{}', 3600], over));
const refund = (over: Record<number, string | number>): Call => (r, k) =>
  r.pmRefund(k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, 'kh7'), k.outboxOf(U), k.expiryIndexOf(U),
    ...withOver(['rf1', U, JSON.stringify([['lot', 5, T0 + DAY]]), T0, DAY, '{}', 'h', 3600, 'kh7'], over));
const take = (over: Record<number, string | number>): Call => (r, k) =>
  r.pmTake(k.goods(G), k.bought(G), k.dailyBought(G), k.ordersTaken(G), ...withOver(['ord1', U, 1, T0, 1000, 1000, 0, ''], over));
const giveBack = (over: Record<number, string | number>): Call => (r, k) =>
  r.pmGiveBack(k.goods(G), k.bought(G), k.dailyBought(G), k.ordersTaken(G), k.returnedRedemptions(G),
    ...withOver(['redemption', 'rd1', U, 1, ''], over));

const L = 3;
const PRIZES = '[{"id":1,"name":"p","kind":"points","points":5,"weight":1,"limited":1}]';

const lotteryReserveArgs = (over: Record<number, string | number>) => {
  const argv: Array<string | number> = ['draw1', U, 'h', 15_000, T0, 'tok', 'kh5', 12345];
  for (const [i, v] of Object.entries(over)) argv[Number(i)] = v;
  return argv;
};
const lotteryReserve = (over: Record<number, string | number>): Call => (r, k) =>
  r.pmLotteryReserve(k.lottery(L), k.lotteryStock(L), k.lotteryHolds(L), k.lotteryHoldDeadlines(L), ...lotteryReserveArgs(over));

const lotteryDrawArgs = (over: Record<number, string | number>) => {
  const argv: Array<string | number> = [
    'draw2', U, 'h', 3600, T0, 'tok', 'kh6', L, 20, 30_000, 2, 0, '{"id":1,"name":"p","kind":"points","points":5}', DAY, '',
  ];
  for (const [i, v] of Object.entries(over)) argv[Number(i)] = v;
  return argv;
};
/** A whole draw (lua/draw-at-once-9.lua) of U in lottery L; `over` indexes its 13 arguments. */
const drawAtOnce = (over: Record<number, string | number>): Call => (r, k) =>
  r.pmDrawAtOnce(
    k.lottery(L), k.lotteryStock(L), k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, 'kh9'), k.drawState(U, L), k.outboxOf(U),
    k.expiryIndexOf(U), ...withOver(['d9', U, 'h', 3600, T0, 'tok', 'kh9', L, 12345, 0, 86_400_000, 'PM9', ''], over),
  );
const lotteryDraw = (over: Record<number, string | number>): Call => (r, k) =>
  r.pmLotteryDraw(k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, 'kh6'), k.drawState(U, L), k.outboxOf(U), k.expiryIndexOf(U), ...lotteryDrawArgs(over));

const lotterySetArgs = (over: Record<number, string | number>) => {
  const argv: Array<string | number> = [2, 1, 0, 0, 20, 0, 0, PRIZES, 0, 1, 10, 10];
  for (const [i, v] of Object.entries(over)) argv[Number(i)] = v;
  return argv;
};
const lotterySet = (over: Record<number, string | number>): Call => (r, k) =>
  r.pmLotterySet(k.lottery(L), k.lotteryStock(L), ...lotterySetArgs(over));

const transferDebitArgs = (over: Record<number, string | number>) => {
  const argv: Array<string | number> = ['xfer1', U, 42, 10, 'h', 3600, T0, 'kh7', 0, 5000, 'bob', ''];
  for (const [i, v] of Object.entries(over)) argv[Number(i)] = v;
  return argv;
};
const transferDebit = (over: Record<number, string | number>): Call => (r, k) =>
  r.pmTransferDebit(
    k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, 'kh7'), k.transferDay(U), k.outboxOf(U), k.transfersPendingOf(U),
    k.transfersPendingDataOf(U), ...transferDebitArgs(over),
  );

const R = 42;
const TRANSFER = { id: 'xfer2', from: 99, to: R, toUsername: 'r', amount: 30, parts: [[T0 + DAY, 10], [T0 + 2 * DAY, 20]], at: T0, day: 1 };
const PLAIN = '{"tiers":[0],"earn":[1000],"applyTier":0,"campaign":1000,"lifetime":0}';
const transferCreditArgs = (over: Record<number, string | number>) => {
  const argv: Array<string | number> = [JSON.stringify(TRANSFER), 'h', 3600, T0, 'kh8', PLAIN, R];
  for (const [i, v] of Object.entries(over)) argv[Number(i)] = v;
  return argv;
};
const transferCredit = (over: Record<number, string | number>): Call => (r, k) =>
  r.pmTransferCredit(k.account(R), k.lotsByExpiry(R), k.lotRemaining(R), k.idem(R, 'kh8'), k.outboxOf(R), k.expiryIndexOf(R), ...transferCreditArgs(over));
const withTransfer = (t: Record<string, unknown>) => transferCredit({ 0: JSON.stringify({ ...TRANSFER, ...t }) });
/** The whole transfer at once (lua/transfer-14.lua): U sends 42 to R; `over` indexes its 19 arguments. */
const transferAtOnce = (over: Record<number, string | number>): Call => (r, k) =>
  r.pmTransfer(
    k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, 'kh7'), k.transferDay(U), k.outboxOf(U), k.transfersPendingOf(U),
    k.transfersPendingDataOf(U), k.account(R), k.lotsByExpiry(R), k.lotRemaining(R), k.idem(R, 'kh8'), k.outboxOf(R), k.expiryIndexOf(R),
    ...withOver([...transferDebitArgs({ 2: R }), '', ...transferCreditArgs({}).slice(1)], over),
  );

const hotReserve = (over: Record<number, string | number>): Call => (r, k) =>
  r.pmHotReserve(k.bucket(G, 0), k.bucketReservations(G, 0), k.bucketDeadlines(G, 0), ...withOver(['hop', U, 1, 'h', 15_000, T0, 'tok', 'khh', 1000, ''], over));
const hotCharge = (over: Record<number, string | number>): Call => (r, k) =>
  r.pmHotCharge(
    k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, 'khh'), k.opRef(U, 'hop'), k.outboxOf(U), k.hotBought(U),
    ...withOver(['hop', U, 10, 'h', 3600, T0, 'tok', '{}', 'khh', '', G, 1, 2, 0, 0], over),
  );

const CASES: Array<[string, Call]> = [
  ['earn: points not a number (failed after the lot write before)', earn({ 2: 'abc' })],
  ['earn: zero points', earn({ 2: 0 })],
  ['earn: negative points', earn({ 2: -5 })],
  ['earn: fractional points', earn({ 2: 1.5 })],
  ['earn: lot lifetime not a number', earn({ 7: 'x' })],
  ['earn: negative cap', earn({ 5: -1 })],
  ['earn: empty op id', earn({ 0: '' })],
  ['earn: user id not a number', earn({ 1: 'u' })],
  ['earn: TTL zero', earn({ 9: 0 })],
  ['earn: clock not a number', earn({ 10: 'soon' })],
  ['earn: extra fields not JSON', earn({ 11: '{nope' })],
  ['earn: extra fields a JSON string', earn({ 11: '"s"' })],
  ['earn: empty key hash', earn({ 12: '' })],
  ['charge: amount not a number', charge({ 2: 'abc' })],
  ['charge: negative amount (a credit in disguise)', charge({ 2: -50 })],
  ['charge: empty token', charge({ 6: '' })],
  ['charge: extra fields not JSON', charge({ 7: 'x' })],
  ['charge: TTL not a number', charge({ 4: 'forever' })],
  ['earn: risk spec not JSON', earn({ 15: '{' })],
  ['earn: risk threshold not a number', earn({ 15: '{"m":1,"g":"lots"}' })],
  ['charge: guard neither empty nor system', (r, k) => r.pmCharge(k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, 'kh2'), k.opRef(U, 'op2'), k.outboxOf(U), ...chargeArgs({}), 'admin')],
  ['hold: guard neither empty nor system', hold({ 10: 'root' })],
  ['risk-set: unknown mode', (r, k) => r.pmRiskSet(k.account(U), 'ban')],
  ['hydrate: risk status neither f nor empty', (r, k) => r.pmHydrate(k.account(99), k.lotsByExpiry(99), k.lotRemaining(99), k.expiryIndexOf(99), 99, 10, 10, 0, 0, 'x')],
  ['hold: amount zero', hold({ 2: 0 })],
  ['hold: empty hold id', hold({ 3: '' })],
  ['hold: expiry not a number', hold({ 7: 'soon' })],
  ['hold: extra fields not JSON', hold({ 8: '{oops' })],
  ['hold: empty request hash', hold({ 9: '' })],
  ['hold-settle: unknown mode', holdSettle({ 0: 'refund' })],
  ['hold-settle: capture of zero points', holdSettle({ 3: 0 })],
  ['hold-settle: capture beyond the hold', holdSettle({ 3: 11 })],
  ['hold-settle: grace zero', holdSettle({ 5: 0 })],
  ['hold-settle: ttl zero', holdSettle({ 7: 0 })],
  ['refund: portions not JSON', refund({ 2: '[[' })],
  ['refund: no portions', refund({ 2: '[]' })],
  ['refund: a portion without a lot id', refund({ 2: JSON.stringify([[5, 5, T0]]) })],
  ['refund: grace zero', refund({ 4: 0 })],
  ['refund: empty key hash', refund({ 8: '' })],
  ['take: empty order id', take({ 0: '' })],
  ['take: quantity zero', take({ 2: 0 })],
  ['take: tier factor above 1000', take({ 4: 1001 })],
  ['take: campaign discount zero', take({ 5: 0 })],
  ['take: expected price not a number', take({ 7: 'cheap' })],
  ['give-back: unknown mode', giveBack({ 0: 'gift' })],
  ['give-back: empty id', giveBack({ 1: '' })],
  ['give-back: redemption quantity zero', giveBack({ 3: 0 })],
  ['give-back: redemption day not a number', giveBack({ 4: 'today' })],
  ['redeem: quantity zero', redeem({ 2: 0 })],
  ['redeem: fractional quantity', redeem({ 2: 1.5 })],
  ['redeem: empty op id', redeem({ 0: '' })],
  ['redeem: TTL zero', redeem({ 4: 0 })],
  ['redeem: tier table not JSON', redeem({ 8: 'tiers' })],
  ['redeem: tier table without prices', redeem({ 8: '{"min":[0]}' })],
  ['redeem: tier table lengths differ', redeem({ 8: '{"min":[0,100],"pm":[1000]}' })],
  ['redeem: campaign discount above 1000', redeem({ 9: 1001 })],
  ['redeem: expected price zero', redeem({ 11: 0 })],
  ['redeem: extra fields not JSON', redeem({ 12: 'x' })],
  ['reserve: quantity not a number', reserve({ 2: 'two' })],
  ['reserve: negative quantity (a restock in disguise)', reserve({ 2: -3 })],
  ['reserve: timeout zero', reserve({ 4: 0 })],
  ['reserve: empty token', reserve({ 6: '' })],
  ['reserve: empty key hash', reserve({ 7: '' })],
  ['reserve: zero price factor', reserve({ 8: 0 })],
  ['reserve: price factor above 1000 (a surcharge in disguise)', reserve({ 8: 1001 })],
  ['reserve: zero campaign discount', reserve({ 9: 0 })],
  ['reserve: campaign discount above 1000', reserve({ 9: 1500 })],
  ['reserve: fractional campaign discount', reserve({ 9: 850.5 })],
  ['reserve: business-day offset not a number', reserve({ 10: 'CST' })],
  ['reserve: expected price zero', reserve({ 11: 0 })],
  ['reserve: expected price not a number', reserve({ 11: 'cheap' })],
  ['quote: campaign discount not a number', (r, k) => r.pmQuote(k.goods(G), k.bought(G), k.dailyBought(G), U, 1000, 'x', 0, T0)],
  ['abort: empty token', (r, k) => r.pmAbort(k.idem(U, 'kh4'), '', 3600)],
  ['abort: TTL not a number', (r, k) => r.pmAbort(k.idem(U, 'kh4'), 'tok', 'x')],
  ['confirm: empty hold', (r, k) => r.pmConfirm(k.reservations(G), k.reservationDeadlines(G), '', 'tok')],
  ['release: empty token', (r, k) => r.pmRelease(k.goods(G), k.bought(G), k.reservations(G), k.reservationDeadlines(G), k.dailyBought(G), `${U}:held`, '')],
  ['balance: horizon not a number', (r, k) => r.pmBalance(k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), 'x', T0)],
  ['expire: user id not a number', (r, k) => r.pmExpire(k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.outboxOf(U), k.expiryIndexOf(U), 'u', T0)],
  ['expire: clock not a number', (r, k) => r.pmExpire(k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.outboxOf(U), k.expiryIndexOf(U), U, 'now')],
  ['goods-set: price zero', (r, k) => r.pmGoodsSet(k.goods(G), 0, 0, 0, 0, 1, 5, 0, 0)],
  ['goods-set: active neither 0 nor 1', (r, k) => r.pmGoodsSet(k.goods(G), 10, 0, 0, 0, 'yes', 5, 0, 0)],
  ['goods-set: negative stock', (r, k) => r.pmGoodsSet(k.goods(G), 10, 0, 0, 0, 1, -1, 0, 0)],
  ['goods-set: negative daily limit', (r, k) => r.pmGoodsSet(k.goods(G), 10, 0, 0, 0, 1, 5, -1, 0)],
  ['goods-set: dynamic pricing neither 0 nor 1', (r, k) => r.pmGoodsSet(k.goods(G), 10, 0, 0, 0, 1, 5, 0, 'yes')],
  ['goods-set: daily limit missing', (r, k) => r.pmGoodsSet(k.goods(G), 10, 0, 0, 0, 1, 5)],
  ['hydrate: lot triple cut short', (r, k) => r.pmHydrate(k.account(99), k.lotsByExpiry(99), k.lotRemaining(99), k.expiryIndexOf(99), 99, 10, 10, 0, 0, '', 'lot', 10)],
  ['hydrate: lot remaining not a number', (r, k) => r.pmHydrate(k.account(99), k.lotsByExpiry(99), k.lotRemaining(99), k.expiryIndexOf(99), 99, 10, 10, 0, 0, '', 'lot', 'x', T0)],
  ['repair-stock: measured stock not a number', (r, k) => r.pmRepairStock(k.goods(G), 'x', 1)],
  ['repair-stock: zero correction', (r, k) => r.pmRepairStock(k.goods(G), 5, 0)],
  ['repair-balance: drift not a number', (r, k) => r.pmRepairBalance(k.account(U), k.lotRemaining(U), 'x')],
  ['repair-balance: zero drift', (r, k) => r.pmRepairBalance(k.account(U), k.lotRemaining(U), 0)],
  ['restock: total not a number', (r, k) => r.pmRestock(k.goods(G), 'x')],
  ['restock: negative total', (r, k) => r.pmRestock(k.goods(G), -5)],
  ['leaderboard: points zero', (r, k) => r.pmLeaderboard(k.board('daily', 'd'), k.board('weekly', 'w'), k.board('monthly', 'm'), k.board('all', 'all'), k.boardApplied(0), 100, 100, 100, U, 0, '1-0')],
  ['leaderboard: not a stream id', (r, k) => r.pmLeaderboard(k.board('daily', 'd'), k.board('weekly', 'w'), k.board('monthly', 'm'), k.board('all', 'all'), k.boardApplied(0), 100, 100, 100, U, 5, 'op-1')],
  ['lock-extend: TTL not a number', (r, k) => r.pmLockExtend(k.taskLock('t'), 'tok', 'x')],
  ['lock-release: empty token', (r, k) => r.pmLockRelease(k.taskLock('t'), '')],
  ['lottery-reserve: random number not a number', lotteryReserve({ 7: 'lucky' })],
  ['lottery-reserve: random number of 2^48 (outside the CSPRNG range)', lotteryReserve({ 7: 2 ** 48 })],
  ['lottery-reserve: negative random number', lotteryReserve({ 7: -1 })],
  ['lottery-reserve: fractional random number', lotteryReserve({ 7: 0.5 })],
  ['lottery-reserve: timeout zero', lotteryReserve({ 3: 0 })],
  ['lottery-reserve: empty token', lotteryReserve({ 5: '' })],
  ['lottery-reserve: empty key hash', lotteryReserve({ 6: '' })],
  ['lottery-reserve: user id not a number', lotteryReserve({ 1: 'u' })],
  ['draw-at-once: random number 2^48 (out of range)', drawAtOnce({ 8: 2 ** 48 })],
  ['draw-at-once: prize lot lifetime zero', drawAtOnce({ 10: 0 })],
  ['draw-at-once: empty exchange number', drawAtOnce({ 11: '' })],
  ['draw-at-once: a guard neither empty nor system', drawAtOnce({ 12: 'admin' })],
  ['draw-at-once: business-day offset not a number', drawAtOnce({ 9: 'CST' })],
  ['lottery-draw: cost zero (a free draw)', lotteryDraw({ 8: 0 })],
  ['lottery-draw: negative cost (a credit in disguise)', lotteryDraw({ 8: -20 })],
  ['lottery-draw: negative cooldown', lotteryDraw({ 9: -1 })],
  ['lottery-draw: daily limit not a number', lotteryDraw({ 10: 'x' })],
  ['lottery-draw: business-day offset not a number', lotteryDraw({ 11: 'CST' })],
  ['lottery-draw: prize not JSON', lotteryDraw({ 12: '{nope' })],
  ['lottery-draw: prize of an unknown kind', lotteryDraw({ 12: '{"id":1,"name":"p","kind":"cash"}' })],
  ['lottery-draw: points prize without points', lotteryDraw({ 12: '{"id":1,"name":"p","kind":"points"}' })],
  ['lottery-draw: points prize with negative points', lotteryDraw({ 12: '{"id":1,"name":"p","kind":"points","points":-5}' })],
  ['lottery-draw: goods prize without an exchange number', lotteryDraw({ 12: '{"id":1,"name":"p","kind":"goods","goodsId":7}' })],
  ['lottery-draw: prize without an id', lotteryDraw({ 12: '{"name":"p","kind":"none"}' })],
  ['lottery-draw: prize lot lifetime zero', lotteryDraw({ 13: 0 })],
  ['lottery-draw: empty token', lotteryDraw({ 5: '' })],
  ['lottery-draw: TTL zero', lotteryDraw({ 3: 0 })],
  ['lottery-release: empty token', (r, k) => r.pmLotteryRelease(k.lotteryStock(L), k.lotteryHolds(L), k.lotteryHoldDeadlines(L), `${U}:held`, '')],
  ['lottery-release: empty hold', (r, k) => r.pmLotteryRelease(k.lotteryStock(L), k.lotteryHolds(L), k.lotteryHoldDeadlines(L), '', 'tok')],
  ['lottery-set: version zero', lotterySet({ 0: 0 })],
  ['lottery-set: active neither 0 nor 1', lotterySet({ 1: 'yes' })],
  ['lottery-set: cost zero', lotterySet({ 4: 0 })],
  ['lottery-set: no prizes', lotterySet({ 7: '[]' })],
  ['lottery-set: prizes not an array', lotterySet({ 7: '{"id":1}' })],
  ['lottery-set: prize weight zero', lotterySet({ 7: PRIZES.replace('"weight":1', '"weight":0') })],
  ['lottery-set: prize of an unknown kind', lotterySet({ 7: PRIZES.replace('"kind":"points"', '"kind":"cash"') })],
  ['lottery-set: load-only flag neither 0 nor 1', lotterySet({ 8: 2 })],
  ['lottery-set: stock triple cut short', (r, k) => r.pmLotterySet(k.lottery(L), k.lotteryStock(L), ...lotterySetArgs({}).slice(0, 11))],
  ['lottery-set: negative units left', lotterySet({ 11: -1 })],
  ['transfer-debit: amount zero', transferDebit({ 3: 0 })],
  ['transfer-debit: negative amount (a credit in disguise)', transferDebit({ 3: -10 })],
  ['transfer-debit: to the sender', transferDebit({ 2: U })],
  ['transfer-debit: daily maximum zero', transferDebit({ 9: 0 })],
  ['transfer-debit: business-day offset not a number', transferDebit({ 8: 'CST' })],
  ['transfer-debit: empty receiver username', transferDebit({ 10: '' })],
  ['transfer-debit: empty key hash', transferDebit({ 7: '' })],
  ['transfer at once: amount zero', transferAtOnce({ 3: 0 })],
  ['transfer at once: credited to another member than the debit names', transferAtOnce({ 18: 43 })],
  ['transfer at once: credit multiplied by a campaign', transferAtOnce({ 17: PLAIN.replace('"campaign":1000', '"campaign":1500') })],
  ['transfer at once: credit TTL zero', transferAtOnce({ 14: 0 })],
  ['transfer at once: empty credit key hash', transferAtOnce({ 16: '' })],
  ['transfer-credit: transfer not JSON', transferCredit({ 0: '{nope' })],
  ['transfer-credit: for another receiver', transferCredit({ 6: 43 })],
  ['transfer-credit: from the receiver', withTransfer({ from: R })],
  ['transfer-credit: no parts', withTransfer({ parts: [] })],
  ['transfer-credit: parts not adding up to the amount', withTransfer({ amount: 31 })],
  ['transfer-credit: a part of negative points', withTransfer({ parts: [[T0 + DAY, -10], [T0 + DAY, 40]] })],
  ['transfer-credit: a part without an expiry', withTransfer({ parts: [['soon', 30]] })],
  ['transfer-credit: empty transfer id', withTransfer({ id: '' })],
  ['transfer-credit: multiplied by the tier', transferCredit({ 5: PLAIN.replace('"applyTier":0', '"applyTier":1') })],
  ['transfer-credit: multiplied by a campaign', transferCredit({ 5: PLAIN.replace('"campaign":1000', '"campaign":1500') })],
  ['transfer-credit: counted toward the tier', transferCredit({ 5: PLAIN.replace('"lifetime":0', '"lifetime":1') })],
  ['transfer-credit: TTL zero', transferCredit({ 2: 0 })],
  ['hot-reserve: quantity zero', hotReserve({ 2: 0 })],
  ['hot-reserve: price factor above 1000', hotReserve({ 8: 1001 })],
  ['hot-reserve: expected price not a number', hotReserve({ 9: 'cheap' })],
  ['hot-charge: amount zero', hotCharge({ 2: 0 })],
  ['hot-charge: goods id not a number', hotCharge({ 10: 'g' })],
  ['hot-charge: quantity zero', hotCharge({ 11: 0 })],
  ['hot-charge: negative limit', hotCharge({ 12: -1 })],
  ['hot-charge: daily limit fractional', hotCharge({ 13: 1.5 })],
  ['hot-charge: business-day offset not a number', hotCharge({ 14: 'CST' })],
  ['hot-return: quantity zero', (r, k) => r.pmHotReturn(k.bucket(G, 0), k.bucketReturned(G, 0), 'op9', 0)],
  ['hot-return: empty op id', (r, k) => r.pmHotReturn(k.bucket(G, 0), k.bucketReturned(G, 0), '', 1)],
  ['hot-uncount: goods id not a number', (r, k) => r.pmHotUncount(k.hotBought(U), 'g', 'op9', 1, '')],
  ['hot-uncount: negative quantity', (r, k) => r.pmHotUncount(k.hotBought(U), G, 'op9', -1, '')],
  ['hot-uncount: day not a number', (r, k) => r.pmHotUncount(k.hotBought(U), G, 'op9', 1, 'today')],
  ['hot-release: empty token', (r, k) => r.pmHotRelease(k.bucket(G, 0), k.bucketReservations(G, 0), k.bucketDeadlines(G, 0), `${U}:held`, '')],
  ['transfer-done: empty transfer id', (r, k) => r.pmTransferDone(k.transfersPendingOf(U), k.transfersPendingDataOf(U), '')],
];

describe('every script validates its arguments before its first write', () => {
  beforeAll(async () => {
    // state the scripts would write to: a member with lots, an item on sale, a held reservation
    await hydrateLots(env.redis, env.keys, U, [{ id: 'lot', remaining: 500, expiresAt: T0 + DAY }]);
    await hydrateLots(env.redis, env.keys, R, []);
    await goodsSet(env.redis, env.keys, G, { price: 10, stock: 5 });
    await env.redis.set(env.keys.hold(U, 'held'), JSON.stringify({ id: 'held', userId: U, amount: 10, lots: [['lot', 10, T0 + DAY]], state: 'frozen', at: T0, expiresAt: 0, bizType: 'hold', bizId: '', h: 'h' }));
    await env.redis.hset(env.keys.reservations(G), `${U}:held`, JSON.stringify({ u: U, k: 'held', o: 'o', q: 1, p: 10, t: 'tok', h: 'h', d: T0 }));
    // a lottery with a limited prize and a held draw
    await env.redis.pmLotterySet(env.keys.lottery(L), env.keys.lotteryStock(L), 1, 1, 0, 0, 20, 0, 0, PRIZES, 0, 1, 10, 9);
    await env.redis.hset(env.keys.lotteryHolds(L), `${U}:held`, JSON.stringify({ u: U, k: 'held', o: 'o', t: 'tok', h: 'h', d: T0, c: 20, cd: 0, dl: 0, p: JSON.parse(PRIZES)[0] }));
  });

  for (const [name, call] of CASES) {
    it(`refuses ${name} with BAD_ARGUMENT and writes nothing`, async () => {
      const before = await snapshot(env.redis, env.prefix);
      await expect(call(env.redis, env.keys)).rejects.toThrow(/BAD_ARGUMENT/);
      expect(await snapshot(env.redis, env.prefix)).toEqual(before);
    });
  }

  it('still runs with valid arguments (the checks refuse only what is wrong)', async () => {
    const reply = (await earn({})(env.redis, env.keys)) as unknown[];
    expect(reply[0]).toBe(1);
  });
});
