/**
 * Gathers the calls of one hot-path script (an at-once redemption, an earn, a check-in, a draw's
 * prize hold and charge, an at-once transfer) made in one turn of the event loop and runs them in one script call:
 * lua/<name>-many-n.lua, which runs the script's body once per call, in order
 * (lua/includes/batch.lua). Redis pays a call's fixed cost —
 * the command, the script's setup, decoding the JSON arguments the calls share — once per batch,
 * and the process builds and parses one command instead of many; each call still runs whole and
 * alone inside it and gets its own reply (or its own error). A lone call goes as the script itself.
 *
 * A batch is sent from setImmediate: after the poll phase has run every request whose bytes
 * arrived together, so under load a batch holds what arrived at once, and a lone call waits for
 * nothing but the end of its own turn. A batch closes early at `max` calls. On a Redis Cluster the
 * calls are gathered per hash tag of their first key, so that a batch is one slot.
 */
import { ReplyError } from 'ioredis';
import { scriptBatchSize } from '../metrics/registry.ts';
import { isCluster, type RedisClient } from './client.ts';
import { hashTagOf } from './slot-pipeline.ts';

type Arg = string | number;
type Reply = Array<string | number | null>;

export interface BatchedScript {
  /** The label of pm_script_batch_size. */
  name: string;
  /** The script alone, and the script over several calls. */
  one: 'pmRedeem' | 'pmEarn' | 'pmCheckin' | 'pmLotteryDraw' | 'pmLotteryReserve' | 'pmTransfer' | 'pmDrawAtOnce';
  many: 'pmRedeemMany' | 'pmEarnMany' | 'pmCheckinMany' | 'pmLotteryDrawMany' | 'pmLotteryReserveMany' | 'pmTransferMany' | 'pmDrawAtOnceMany';
  /** Keys and arguments of one call. */
  keys: number;
  args: number;
}

/** lua/redeem-9.lua, gathered into lua/redeem-many-n.lua. */
export const REDEEM_SCRIPT: BatchedScript = { name: 'redeem', one: 'pmRedeem', many: 'pmRedeemMany', keys: 9, args: 13 };
/** lua/earn-7.lua, gathered into lua/earn-many-n.lua. */
export const EARN_SCRIPT: BatchedScript = { name: 'earn', one: 'pmEarn', many: 'pmEarnMany', keys: 7, args: 16 };
/** lua/checkin-6.lua, gathered into lua/checkin-many-n.lua. */
export const CHECKIN_SCRIPT: BatchedScript = { name: 'checkin', one: 'pmCheckin', many: 'pmCheckinMany', keys: 6, args: 8 };
/** lua/lottery-draw-7.lua (a draw's member side), gathered into lua/lottery-draw-many-n.lua. */
export const DRAW_SCRIPT: BatchedScript = { name: 'draw', one: 'pmLotteryDraw', many: 'pmLotteryDrawMany', keys: 7, args: 16 };
/** lua/lottery-reserve-4.lua (a draw's hold of its prize), gathered into lua/lottery-reserve-many-n.lua. */
export const PRIZE_HOLD_SCRIPT: BatchedScript = { name: 'prize-hold', one: 'pmLotteryReserve', many: 'pmLotteryReserveMany', keys: 4, args: 8 };
/** lua/draw-at-once-9.lua (a whole draw on a single-node Redis), gathered into lua/draw-at-once-many-n.lua. */
export const DRAW_AT_ONCE_SCRIPT: BatchedScript = { name: 'draw-at-once', one: 'pmDrawAtOnce', many: 'pmDrawAtOnceMany', keys: 9, args: 13 };
/** lua/transfer-14.lua (a whole transfer on a single-node Redis), gathered into lua/transfer-many-n.lua. */
export const TRANSFER_SCRIPT: BatchedScript = { name: 'transfer', one: 'pmTransfer', many: 'pmTransferMany', keys: 14, args: 19 };

interface Pending {
  keys: string[];
  args: Arg[];
  resolve(reply: Reply): void;
  reject(err: unknown): void;
}

export class ScriptBatcher {
  private readonly queues = new Map<string, Pending[]>();
  private scheduled = false;
  private readonly perSlot: boolean;
  private readonly sizes: { observe(n: number): void };

  constructor(
    private readonly redis: RedisClient,
    private readonly script: BatchedScript,
    private readonly max: number,
  ) {
    this.perSlot = isCluster(redis);
    this.sizes = scriptBatchSize.labels({ script: script.name });
  }

  /** One call's reply, run alone or in the batch of this turn. */
  run(keys: string[], args: Arg[]): Promise<Reply> {
    const { script } = this;
    if (keys.length !== script.keys || args.length !== script.args) {
      return Promise.reject(new Error(`${script.name} takes ${script.keys} keys and ${script.args} arguments`));
    }
    const group = this.perSlot ? hashTagOf(keys[0]) : '';
    return new Promise<Reply>((resolve, reject) => {
      let queue = this.queues.get(group);
      if (!queue) this.queues.set(group, (queue = []));
      queue.push({ keys, args, resolve, reject });
      if (queue.length >= this.max) {
        this.queues.delete(group);
        this.send(queue);
      } else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          const queues = [...this.queues.values()];
          this.queues.clear();
          for (const q of queues) this.send(q);
        });
      }
    });
  }

  private send(batch: Pending[]): void {
    const { redis, script } = this;
    try {
      this.sizes.observe(batch.length);
      if (batch.length === 1) {
        const [one] = batch;
        redis[script.one](...one.keys, ...one.args).then(one.resolve, one.reject);
        return;
      }
      const keys: string[] = [];
      const args: Arg[] = [batch.length];
      for (const p of batch) {
        keys.push(...p.keys);
        args.push(...p.args);
      }
      redis[script.many](keys.length, ...keys, ...args).then(
        (replies) => settle(script, batch, replies),
        (err: unknown) => rejectAll(batch, err),
      );
    } catch (err) {
      // nothing was sent, or its outcome cannot reach anyone: every one of them gets the error
      rejectAll(batch, err);
    }
  }
}

/** Each call's own reply; {0, message} is the error that call raised alone. */
function settle(script: BatchedScript, batch: Pending[], replies: unknown): void {
  if (!Array.isArray(replies) || replies.length !== batch.length || !replies.every(Array.isArray)) {
    rejectAll(batch, new Error(`${script.name}-many answered ${JSON.stringify(replies)?.slice(0, 200)} for ${batch.length} calls`));
    return;
  }
  for (let i = 0; i < batch.length; i++) {
    const reply = replies[i] as Reply;
    if (Number(reply[0]) === 0) batch[i].reject(new ReplyError(String(reply[1])));
    else batch[i].resolve(reply);
  }
}

function rejectAll(batch: Pending[], err: unknown): void {
  for (const p of batch) p.reject(err);
}
