/**
 * The sale pulse: redemptions accepted and refused per goods item per second, for the console's
 * live flash-sale panel. Each API process counts its own answers in memory and adds them to
 * Redis every PULSE_FLUSH_MS (one HINCRBY + EXPIRE per item and second touched), so the hot path
 * pays a Map increment, not a Redis command, and a sold-out answer that never reached Redis stays
 * that cheap. The counts are statistics, not state: best effort (a failed flush is dropped), kept
 * 120 s, and seconds are the API hosts' clocks.
 */
import type { RedisClient } from '../redis/client.ts';
import type { Keys } from '../redis/keys.ts';
import { slotPipeline } from '../redis/slot-pipeline.ts';

export const PULSE_FLUSH_MS = 500;
const PULSE_TTL_SECONDS = 120;

export interface PulseSecond {
  at: string;
  accepted: number;
  rejected: number;
}

export class SalePulse {
  /** `${goodsId}:${second}` -> [accepted, rejected] not yet in Redis */
  private pending = new Map<string, [number, number]>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  start(flushMs = PULSE_FLUSH_MS): void {
    this.timer ??= setInterval(() => void this.flush(), flushMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  note(goodsId: number, accepted: boolean, atMs = Date.now()): void {
    const id = `${goodsId}:${Math.floor(atMs / 1000)}`;
    const counts = this.pending.get(id) ?? [0, 0];
    counts[accepted ? 0 : 1] += 1;
    this.pending.set(id, counts);
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    const pipe = slotPipeline(this.redis);
    for (const [id, [a, r]] of batch) {
      const [goodsId, second] = id.split(':').map(Number);
      const key = this.keys.salePulse(goodsId, second);
      if (a) pipe.hincrby(key, 'a', a);
      if (r) pipe.hincrby(key, 'r', r);
      pipe.expire(key, PULSE_TTL_SECONDS);
    }
    await pipe.exec().catch(() => {});
  }

  /** The last `seconds` whole seconds before now, oldest first. */
  async read(goodsId: number, seconds: number, nowMs = Date.now()): Promise<PulseSecond[]> {
    const last = Math.floor(nowMs / 1000) - 1;
    const range = Array.from({ length: seconds }, (_, i) => last - seconds + 1 + i);
    const pipe = this.redis.pipeline();
    for (const s of range) pipe.hmget(this.keys.salePulse(goodsId, s), 'a', 'r');
    const replies = (await pipe.exec()) ?? [];
    return range.map((s, i) => {
      const [err, values] = replies[i] ?? [null, null];
      if (err) throw err;
      const [a, r] = (values as Array<string | null> | null) ?? [null, null];
      return { at: new Date(s * 1000).toISOString(), accepted: Number(a ?? 0), rejected: Number(r ?? 0) };
    });
  }
}
