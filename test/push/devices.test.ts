/**
 * Devices API: a member registers, lists and removes push devices; registration is idempotent
 * and moves a token to whoever registers it last; a member keeps at most MAX_DEVICES_PER_MEMBER,
 * the least recently registered going first; bad input is a 400, another member's device a 404.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/context.ts';

const CAP = 4;

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext({ MAX_DEVICES_PER_MEMBER: CAP });
});
afterAll(async () => ctx?.close());

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

const registerAs = (token: string, payload: unknown) =>
  ctx.app.inject({ method: 'POST', url: '/v1/me/devices', headers: auth(token), payload: payload as object });

const listOf = async (token: string) =>
  (await ctx.app.inject({ method: 'GET', url: '/v1/me/devices', headers: auth(token) })).json().items as Array<{ id: number; token: string }>;

describe('devices API', () => {
  it('registers a device and lists it', async () => {
    const [m] = await ctx.createMembers(1);
    const res = await registerAs(m.token, { platform: 'ios', token: 'a1b2c3' });
    expect(res.statusCode).toBe(201);
    const device = res.json();
    expect(device).toMatchObject({ platform: 'ios', token: 'a1b2c3' });
    expect(Number.isInteger(device.id)).toBe(true);
    expect(new Date(device.createdAt).getTime()).toBeGreaterThan(0);
    expect(await listOf(m.token)).toEqual([device]);
  });

  it('answers a repeated registration with the same device', async () => {
    const [m] = await ctx.createMembers(1);
    const first = await registerAs(m.token, { platform: 'android', token: 'same-token' });
    const again = await registerAs(m.token, { platform: 'android', token: 'same-token' });
    expect(again.statusCode).toBe(201);
    const { createdAt, ...same } = again.json();
    expect(same).toEqual({ id: first.json().id, platform: 'android', token: 'same-token' });
    // registering again counts as registering: the device is now the most recent one
    expect(Date.parse(createdAt)).toBeGreaterThanOrEqual(Date.parse(first.json().createdAt));
    expect(await listOf(m.token)).toHaveLength(1);
  });

  it('keeps at most MAX_DEVICES_PER_MEMBER devices, dropping the least recently registered', async () => {
    const [m, other] = await ctx.createMembers(2);
    const ids: number[] = [];
    for (let i = 0; i < CAP; i++) ids.push((await registerAs(m.token, { platform: 'ios', token: `cap-${m.id}-${i}` })).json().id);
    // device 0 registers again, so device 1 is now the least recently registered
    await registerAs(m.token, { platform: 'ios', token: `cap-${m.id}-0` });
    const extra = await registerAs(m.token, { platform: 'android', token: `cap-${m.id}-extra` });
    expect(extra.statusCode).toBe(201);
    const kept = (await listOf(m.token)).map((d) => d.id).sort((a, b) => a - b);
    expect(kept).toEqual([ids[0], ids[2], ids[3], extra.json().id].sort((a, b) => a - b));
    // another member's devices are not touched
    await registerAs(other.token, { platform: 'web', token: `cap-${other.id}` });
    expect(await listOf(m.token)).toHaveLength(CAP);
    expect(await listOf(other.token)).toHaveLength(1);
  });

  it('holds the cap when registrations race', async () => {
    const [m] = await ctx.createMembers(1);
    const answers = await Promise.all(
      Array.from({ length: CAP * 3 }, (_, i) => registerAs(m.token, { platform: 'web', token: `race-${m.id}-${i}` })),
    );
    expect(answers.every((r) => r.statusCode === 201)).toBe(true);
    const [{ n }] = await ctx.sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM devices WHERE user_id = ${m.id}`;
    expect(n).toBe(CAP);
  });

  it('moves a token to the member who registers it last', async () => {
    const [a, b] = await ctx.createMembers(2);
    const first = (await registerAs(a.token, { platform: 'web', token: 'shared-browser' })).json();
    const moved = await registerAs(b.token, { platform: 'web', token: 'shared-browser' });
    expect(moved.statusCode).toBe(201);
    expect(moved.json().id).toBe(first.id);
    expect(await listOf(a.token)).toEqual([]);
    expect((await listOf(b.token)).map((d) => d.id)).toEqual([first.id]);
    // the same token on another platform is another device
    expect((await registerAs(a.token, { platform: 'android', token: 'shared-browser' })).json().id).not.toBe(first.id);
  });

  it.each([
    ['an unknown platform', { platform: 'blackberry', token: 'x' }],
    ['an empty token', { platform: 'ios', token: '' }],
    ['a token with spaces', { platform: 'ios', token: 'a b' }],
    ['a token that is not a string', { platform: 'ios', token: 42 }],
    ['a missing token', { platform: 'ios' }],
    ['an unknown field', { platform: 'ios', token: 'x', userId: 1 }],
    ['an oversized token', { platform: 'ios', token: 'x'.repeat(4097) }],
  ])('rejects %s with 400', async (_name, payload) => {
    const [m] = await ctx.createMembers(1);
    const res = await registerAs(m.token, payload);
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('VALIDATION_FAILED');
    expect(await listOf(m.token)).toEqual([]);
  });

  it('removes an own device and answers 404 for another member’s', async () => {
    const [a, b] = await ctx.createMembers(2);
    const own = (await registerAs(a.token, { platform: 'ios', token: 'dev-a' })).json();
    const theirs = (await registerAs(b.token, { platform: 'ios', token: 'dev-b' })).json();

    const foreign = await ctx.app.inject({ method: 'DELETE', url: `/v1/me/devices/${theirs.id}`, headers: auth(a.token) });
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json().code).toBe('DEVICE_NOT_FOUND');
    expect(await listOf(b.token)).toHaveLength(1);

    const removed = await ctx.app.inject({ method: 'DELETE', url: `/v1/me/devices/${own.id}`, headers: auth(a.token) });
    expect(removed.statusCode).toBe(204);
    expect(removed.body).toBe('');
    expect(await listOf(a.token)).toEqual([]);
    const twice = await ctx.app.inject({ method: 'DELETE', url: `/v1/me/devices/${own.id}`, headers: auth(a.token) });
    expect(twice.statusCode).toBe(404);
    const badId = await ctx.app.inject({ method: 'DELETE', url: '/v1/me/devices/abc', headers: auth(a.token) });
    expect(badId.statusCode).toBe(400);
  });

  it('requires a signed-in member', async () => {
    expect((await ctx.app.inject({ method: 'GET', url: '/v1/me/devices' })).statusCode).toBe(401);
    const res = await ctx.app.inject({ method: 'POST', url: '/v1/me/devices', payload: { platform: 'ios', token: 'x' } });
    expect(res.statusCode).toBe(401);
  });
});
