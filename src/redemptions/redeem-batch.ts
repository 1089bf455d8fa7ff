/**
 * Gathers the at-once redemptions (lua/redeem-9.lua) that reach this process in one turn of the
 * event loop and runs them in one script call (lua/redeem-many-n.lua). Redis pays a call's fixed
 * cost — the command, the script's setup, the tier table's decoding — once per batch instead of
 * once per redemption; each redemption still runs whole and alone inside it, in arrival order,
 * and gets its own reply (or its own error). A lone redemption goes as redeem-9.lua.
 *
 * The batch is sent from setImmediate: after the poll phase has run every request whose bytes
 * arrived together, so under load a batch holds what arrived at once and a lone request waits for
 * nothing but the end of its own turn. A batch closes early at `max` redemptions.
 */
import { ReplyError } from 'ioredis';
import type { RedisClient } from '../redis/client.ts';
import { redeemBatchSize } from '../metrics/registry.ts';

type Arg = string | number;
type Reply = Array<string | number | null>;

/** The keys and the arguments of one redemption, as lua/redeem-9.lua takes them. */
export const REDEEM_KEYS = 9;
export const REDEEM_ARGS = 13;

interface Pending {
  keys: string[];
  args: Arg[];
  resolve(reply: Reply): void;
  reject(err: unknown): void;
}

export class RedeemBatcher {
  private queue: Pending[] = [];
  private scheduled = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly max: number,
  ) {}

  /** One redemption's reply, run alone or in the batch of this turn. */
  run(keys: string[], args: Arg[]): Promise<Reply> {
    if (keys.length !== REDEEM_KEYS || args.length !== REDEEM_ARGS) {
      return Promise.reject(new Error(`redeem takes ${REDEEM_KEYS} keys and ${REDEEM_ARGS} arguments`));
    }
    return new Promise<Reply>((resolve, reject) => {
      this.queue.push({ keys, args, resolve, reject });
      if (this.queue.length >= this.max) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    });
  }

  private flush(): void {
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    try {
      redeemBatchSize.observe(batch.length);
      if (batch.length === 1) {
        const [one] = batch;
        this.redis.pmRedeem(...one.keys, ...one.args).then(one.resolve, one.reject);
        return;
      }
      const keys: string[] = [];
      const args: Arg[] = [batch.length];
      for (const p of batch) {
        keys.push(...p.keys);
        args.push(...p.args);
      }
      this.redis.pmRedeemMany(keys.length, ...keys, ...args).then(
        (replies) => settle(batch, replies),
        (err: unknown) => rejectAll(batch, err),
      );
    } catch (err) {
      // nothing was sent, or its outcome cannot reach anyone: every one of them gets the error
      rejectAll(batch, err);
    }
  }
}

/** Each redemption's own reply; {0, message} is the error that redemption raised alone. */
function settle(batch: Pending[], replies: unknown): void {
  if (!Array.isArray(replies) || replies.length !== batch.length || !replies.every(Array.isArray)) {
    rejectAll(batch, new Error(`redeem-many answered ${JSON.stringify(replies)?.slice(0, 200)} for ${batch.length} redemptions`));
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
