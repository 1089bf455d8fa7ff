/**
 * Loads lua/<name>-<numKeys>.lua once per client (defineCommand: EVALSHA, reloaded on NOSCRIPT)
 * and exposes them typed. `--@include name` lines pull in lua/includes/name.lua at load time.
 * Scripts are addressed by SHA, so two deployed versions of a script never collide.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Result } from 'ioredis';
import type { RedisClient } from './client.ts';

export const LUA_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'lua');

type Arg = string | number;
type Reply = Array<string | number | null>;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    pmEarn(...args: Arg[]): Result<Reply, Context>;
    pmCharge(...args: Arg[]): Result<Reply, Context>;
    pmAbort(...args: Arg[]): Result<Reply, Context>;
    pmReserve(...args: Arg[]): Result<Reply, Context>;
    pmConfirm(...args: Arg[]): Result<number, Context>;
    pmRelease(...args: Arg[]): Result<number, Context>;
    pmLeaderboard(...args: Arg[]): Result<number, Context>;
    pmHydrate(...args: Arg[]): Result<number, Context>;
    pmGoodsSet(...args: Arg[]): Result<number, Context>;
    pmRestock(...args: Arg[]): Result<number, Context>;
    pmBalance(...args: Arg[]): Result<Reply, Context>;
    pmLockRelease(...args: Arg[]): Result<number, Context>;
    pmExpire(...args: Arg[]): Result<number[], Context>;
    pmLockExtend(...args: Arg[]): Result<number, Context>;
    pmRepairStock(...args: Arg[]): Result<number, Context>;
    pmCheckin(...args: Arg[]): Result<Reply, Context>;
    pmHold(...args: Arg[]): Result<Reply, Context>;
    pmHoldSettle(...args: Arg[]): Result<Reply, Context>;
    pmRefund(...args: Arg[]): Result<Reply, Context>;
    pmTake(...args: Arg[]): Result<Reply, Context>;
    pmRiskSet(...args: Arg[]): Result<number, Context>;
    pmGiveBack(...args: Arg[]): Result<number, Context>;
    pmRepairBalance(...args: Arg[]): Result<number, Context>;
    pmLotteryReserve(...args: Arg[]): Result<Reply, Context>;
    pmLotteryDraw(...args: Arg[]): Result<Reply, Context>;
    pmLotteryRelease(...args: Arg[]): Result<number, Context>;
    pmLotterySet(...args: Arg[]): Result<number, Context>;
    pmTransferDebit(...args: Arg[]): Result<Reply, Context>;
    pmTransferCredit(...args: Arg[]): Result<Reply, Context>;
    pmTransferDone(...args: Arg[]): Result<number, Context>;
    pmTransfer(...args: Arg[]): Result<Reply, Context>;
    pmTransferMany(...args: Arg[]): Result<Reply[], Context>;
    pmDrawAtOnce(...args: Arg[]): Result<Reply, Context>;
    pmDrawAtOnceMany(...args: Arg[]): Result<Reply[], Context>;
    pmQuote(...args: Arg[]): Result<Reply, Context>;
    pmHotReserve(...args: Arg[]): Result<Reply, Context>;
    pmHotCharge(...args: Arg[]): Result<Reply, Context>;
    pmHotRelease(...args: Arg[]): Result<number, Context>;
    pmHotReturn(...args: Arg[]): Result<number, Context>;
    pmHotUncount(...args: Arg[]): Result<number, Context>;
    pmRedeem(...args: Arg[]): Result<Reply, Context>;
    pmRedeemMany(...args: Arg[]): Result<Reply[], Context>;
    pmEarnMany(...args: Arg[]): Result<Reply[], Context>;
    pmCheckinMany(...args: Arg[]): Result<Reply[], Context>;
    pmLotteryDrawMany(...args: Arg[]): Result<Reply[], Context>;
    pmLotteryReserveMany(...args: Arg[]): Result<Reply[], Context>;
  }
}

export const COMMANDS: Record<string, string> = {
  earn: 'pmEarn',
  charge: 'pmCharge',
  abort: 'pmAbort',
  reserve: 'pmReserve',
  confirm: 'pmConfirm',
  release: 'pmRelease',
  leaderboard: 'pmLeaderboard',
  hydrate: 'pmHydrate',
  'goods-set': 'pmGoodsSet',
  restock: 'pmRestock',
  balance: 'pmBalance',
  'lock-release': 'pmLockRelease',
  expire: 'pmExpire',
  'lock-extend': 'pmLockExtend',
  'repair-stock': 'pmRepairStock',
  checkin: 'pmCheckin',
  hold: 'pmHold',
  'hold-settle': 'pmHoldSettle',
  refund: 'pmRefund',
  take: 'pmTake',
  'risk-set': 'pmRiskSet',
  'give-back': 'pmGiveBack',
  'repair-balance': 'pmRepairBalance',
  'lottery-reserve': 'pmLotteryReserve',
  'lottery-draw': 'pmLotteryDraw',
  'lottery-release': 'pmLotteryRelease',
  'lottery-set': 'pmLotterySet',
  'transfer-debit': 'pmTransferDebit',
  'transfer-credit': 'pmTransferCredit',
  'transfer-done': 'pmTransferDone',
  transfer: 'pmTransfer',
  'transfer-many': 'pmTransferMany',
  'draw-at-once': 'pmDrawAtOnce',
  'draw-at-once-many': 'pmDrawAtOnceMany',
  quote: 'pmQuote',
  'hot-reserve': 'pmHotReserve',
  'hot-charge': 'pmHotCharge',
  'hot-release': 'pmHotRelease',
  'hot-return': 'pmHotReturn',
  'hot-uncount': 'pmHotUncount',
  redeem: 'pmRedeem',
  'redeem-many': 'pmRedeemMany',
  'earn-many': 'pmEarnMany',
  'checkin-many': 'pmCheckinMany',
  'lottery-draw-many': 'pmLotteryDrawMany',
  'lottery-reserve-many': 'pmLotteryReserveMany',
};

/** Script commands that write (gated by src/recovery/redis-gate.ts, replicated before an answer by replica-wait.ts). */
export const WRITE_COMMANDS = [
  'pmEarn', 'pmCharge', 'pmReserve', 'pmConfirm', 'pmRelease', 'pmAbort', 'pmHydrate', 'pmGoodsSet',
  'pmRestock', 'pmExpire', 'pmLeaderboard', 'pmRepairStock', 'pmRepairBalance', 'pmCheckin',
  'pmLotteryReserve', 'pmLotteryDraw', 'pmLotteryRelease', 'pmLotterySet', 'pmHold', 'pmHoldSettle', 'pmRefund', 'pmTake', 'pmGiveBack', 'pmRiskSet',
  'pmTransferDebit', 'pmTransferCredit', 'pmTransferDone', 'pmTransfer', 'pmTransferMany', 'pmDrawAtOnce', 'pmDrawAtOnceMany', 'pmHotReserve', 'pmHotCharge', 'pmHotRelease',
  'pmHotReturn', 'pmHotUncount', 'pmRedeem', 'pmRedeemMany', 'pmEarnMany', 'pmCheckinMany',
  'pmLotteryDrawMany', 'pmLotteryReserveMany',
] as const;


export function readScript(file: string): string {
  const src = readFileSync(join(LUA_DIR, file), 'utf8');
  return src.replace(/^--@include (\S+)\s*$/gm, (_, name: string) =>
    readFileSync(join(LUA_DIR, 'includes', `${name}.lua`), 'utf8'),
  );
}

/**
 * Every script file as { name, numberOfKeys, lua }. `<name>-n.lua` takes a varying number of keys:
 * numberOfKeys is undefined and the caller passes the count first (ioredis's convention).
 */
export function loadScripts() {
  return readdirSync(LUA_DIR)
    .filter((f) => f.endsWith('.lua'))
    .map((file) => {
      const m = /^(.+)-(\d+|n)\.lua$/.exec(file);
      if (!m) throw new Error(`lua/${file}: name must be <name>-<numKeys>.lua or <name>-n.lua`);
      return { name: m[1], numberOfKeys: m[2] === 'n' ? undefined : Number(m[2]), lua: readScript(file) };
    });
}

const loaded = loadScripts();

/**
 * Script commands whose key count varies (lua/<name>-n.lua): the caller passes it first, so their
 * first key is their second argument.
 */
export const VARIADIC_COMMANDS: ReadonlySet<string> = new Set(
  loaded.filter((s) => s.numberOfKeys === undefined).map((s) => COMMANDS[s.name]),
);

export function registerScripts<R extends RedisClient>(redis: R): R {
  for (const s of loaded) {
    const command = COMMANDS[s.name];
    if (!command) throw new Error(`lua/${s.name}: no command name registered`);
    redis.defineCommand(command, { numberOfKeys: s.numberOfKeys, lua: s.lua });
  }
  return redis;
}
