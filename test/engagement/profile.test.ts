/**
 * Member profiles: validated fields (lengths, http(s) URL, a real date not in the future, the
 * gender list), nothing written on a refusal; the first complete profile (nickname, avatar,
 * birthday) is recorded once as a member event, and the complete-your-profile task pays once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type Pipeline, type TestContext } from '../support/context.ts';
import { bearer, expectError } from '../api/helpers.ts';
import { followerFor, ledgerOf, settle } from './support.ts';

let ctx: TestContext;
let pipeline: Pipeline;

beforeAll(async () => {
  ctx = await createTestContext();
  pipeline = await ctx.startPipeline();
});
afterAll(async () => ctx?.close());

const patch = (token: string, payload: unknown) =>
  ctx.app.inject({ method: 'PATCH', url: '/v1/me/profile', headers: bearer(token), payload: payload as object });
const get = (token: string) => ctx.app.inject({ url: '/v1/me/profile', headers: bearer(token) });

describe('member profile', () => {
  it('starts empty and sets, trims and clears fields', async () => {
    const [m] = await ctx.createMembers(1);
    expect((await get(m.token)).json()).toEqual({ nickname: null, avatarUrl: null, birthday: null, gender: null, complete: false, completedAt: null });
    const set = await patch(m.token, { nickname: '  Ada  ', gender: 'female', birthday: '1990-02-28' });
    expect(set.statusCode, set.body).toBe(200);
    expect(set.json()).toMatchObject({ nickname: 'Ada', gender: 'female', birthday: '1990-02-28', complete: false });
    const cleared = await patch(m.token, { gender: null });
    expect(cleared.json()).toMatchObject({ nickname: 'Ada', gender: null, birthday: '1990-02-28' });
    expect((await get(m.token)).json()).toEqual(cleared.json());
  });

  it('refuses bad fields with 400 and writes nothing', async () => {
    const [m] = await ctx.createMembers(1);
    const tomorrow = new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 10);
    for (const bad of [
      {},
      { nickname: '' },
      { nickname: '   ' },
      { nickname: 'x'.repeat(33) },
      { nickname: 'tab\there' },
      { avatarUrl: 'not a url' },
      { avatarUrl: 'ftp://example.com/a.png' },
      { avatarUrl: 'javascript:alert(1)' },
      { avatarUrl: `https://example.com/${'a'.repeat(2048)}` },
      { birthday: '2001-02-30' },
      { birthday: '01/02/2001' },
      { birthday: tomorrow },
      { birthday: '1899-12-31' },
      { gender: 'unknown' },
      { nickname: 'ok', extra: 1 },
      { nickname: 5 },
    ]) {
      expectError(await patch(m.token, bad), 400, 'VALIDATION_FAILED');
    }
    expect(await ctx.sql`SELECT 1 FROM member_profiles WHERE user_id = ${m.id}`).toHaveLength(0);
    expectError(await ctx.app.inject({ method: 'PATCH', url: '/v1/me/profile', payload: { nickname: 'x' } }), 401, 'UNAUTHORIZED');
  });

  it('records completion once, however often the profile is completed again or concurrently, and pays the task once', async () => {
    const [m] = await ctx.createMembers(1);
    const follower = followerFor(ctx);
    await patch(m.token, { nickname: 'Grace', birthday: '1985-12-09' });
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => patch(m.token, { avatarUrl: `https://cdn.example.com/avatars/${i}.png` })),
    );
    for (const a of answers) expect(a.statusCode, a.body).toBe(200);
    const first = (await get(m.token)).json();
    expect(first.complete).toBe(true);
    expect(typeof first.completedAt).toBe('string');

    await patch(m.token, { avatarUrl: null });
    const again = await patch(m.token, { avatarUrl: 'http://example.com/me.jpg' });
    expect(again.json()).toMatchObject({ complete: true, completedAt: first.completedAt });
    const events = await ctx.sql`SELECT type FROM member_events WHERE user_id = ${m.id}`;
    expect(events).toEqual([{ type: 'profile_complete' }]);

    await settle(pipeline, follower);
    await settle(pipeline, follower);
    expect(await ledgerOf(ctx.sql, m.id, 'task')).toEqual([expect.objectContaining({ bizId: 'complete_profile', delta: 20 })]);
    const tasks = (await ctx.app.inject({ url: '/v1/me/tasks', headers: bearer(m.token) })).json().items;
    expect(tasks.find((t: { key: string }) => t.key === 'complete_profile')).toMatchObject({ progress: 1, status: 'completed' });
  });
});
