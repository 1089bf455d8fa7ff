/**
 * src/redis/light-pipeline.ts: the auto-pipelined connections build their pipelines without a copy
 * of every script, and those pipelines still run every script — defined before or after, wrapped
 * or not — against a real Redis, alone, auto-pipelined, mixed with plain commands and in MULTI.
 */
import { randomBytes } from 'node:crypto';
import { Pipeline, type Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../src/redis/client.ts';
import { REDIS_URL } from '../support/urls.ts';

const prefix = `pm-test-lp-${randomBytes(4).toString('hex')}`;
let redis: Redis;
let plain: Redis;

beforeAll(async () => {
  redis = createRedis(REDIS_URL, 'api'); // auto-pipelined: light pipelines
  plain = createRedis(REDIS_URL, 'api', { autoPipelining: false });
  await Promise.all([redis.ping(), plain.ping()]);
});
afterAll(async () => {
  const keys = await plain.keys(`${prefix}:*`);
  if (keys.length > 0) await plain.del(...keys);
  redis.disconnect();
  plain.disconnect();
});

const ownScriptMethods = (p: object) => Object.keys(p).filter((k) => k.startsWith('pm'));

describe('light pipelines', () => {
  it('carry no per-pipeline copy of the scripts, where an ioredis pipeline carries two per script', () => {
    const scripts = Object.keys((redis as unknown as { scriptsSet: object }).scriptsSet).length;
    expect(scripts).toBeGreaterThan(30);
    expect(ownScriptMethods(redis.pipeline())).toEqual([]);
    expect(ownScriptMethods(plain.pipeline())).toHaveLength(2 * scripts);
    expect(redis.pipeline()).toBeInstanceOf(Pipeline);
  });

  it('run scripts, plain commands and MULTI with the answers of an ordinary pipeline', async () => {
    const k = `${prefix}:g`;
    const build = (c: Redis, key: string) =>
      c.pipeline().set(key, 'x').pmLockRelease(key, 'other').pmLockRelease(key, 'x').get(key).exec();
    const light = await build(redis, `${k}:light`);
    const ordinary = await build(plain, `${k}:plain`);
    expect(light).toEqual(ordinary);
    expect(light).toEqual([[null, 'OK'], [null, 0], [null, 1], [null, null]]);
    const multi = await redis.multi().incr(`${k}:n`).set(`${k}:m`, 'y').pmLockRelease(`${k}:m`, 'y').incr(`${k}:n`).exec();
    expect(multi).toEqual([[null, 1], [null, 'OK'], [null, 1], [null, 2]]);
  });

  it('auto-pipelines hundreds of concurrent script calls and commands, each with its own answer', async () => {
    const calls = Array.from({ length: 300 }, (_, i) =>
      i % 3 === 0 ? redis.set(`${prefix}:c:${i}`, String(i)) : redis.pmLockRelease(`${prefix}:c:${i - (i % 3)}`, i % 3 === 1 ? 'nope' : String(i - (i % 3))),
    );
    const answers = await Promise.all(calls);
    answers.forEach((a, i) => expect(a, `call ${i}`).toEqual(i % 3 === 0 ? 'OK' : i % 3 === 1 ? 0 : 1));
  });

  it('see a script defined after the connection was made, and a method wrapped after it', async () => {
    const c = createRedis(REDIS_URL, 'api');
    try {
      c.defineCommand('lpEcho', { numberOfKeys: 1, lua: 'return {KEYS[1], ARGV[1]}' });
      const echo = (c as unknown as { lpEcho(k: string, v: string): Promise<unknown> }).lpEcho;
      expect(await echo.call(c, `${prefix}:e`, 'v')).toEqual([`${prefix}:e`, 'v']);
      const target = c as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
      const original = target.lpEcho;
      target.lpEcho = function (this: unknown, ...args: unknown[]) {
        return args[1] === 'refuse' ? Promise.reject(new Error('wrapped')) : original.apply(this, args);
      };
      const p = c.pipeline() as unknown as { lpEcho(k: string, v: string): unknown; exec(): Promise<Array<[Error | null, unknown]>> };
      p.lpEcho(`${prefix}:e`, 'ok');
      expect(p.lpEcho, 'the pipeline calls the method the client has now').toBe(target.lpEcho);
      await expect(p.lpEcho(`${prefix}:e`, 'refuse') as Promise<unknown>, 'the wrapper runs for the pipeline').rejects.toThrow('wrapped');
      const [[err, value]] = await p.exec();
      expect([err, value]).toEqual([null, [`${prefix}:e`, 'ok']]);
    } finally {
      c.disconnect();
    }
  });
});
