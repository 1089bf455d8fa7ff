/**
 * A/B experiments through the API: admin definitions (auth, idempotency, validation, status
 * rules), sticky assignment recorded once (repeated, concurrent, after a weight change, without
 * the Redis cache), events and which of them count as conversions, and results equal to a
 * fixture computed by hand.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { createTestContext, type TestContext } from '../support/context.ts';
import { bearer, expectError } from '../api/helpers.ts';
import { assignVariant } from '../../src/experiments/assign.ts';
import { chiSquarePValue, chiSquareStatistic } from '../../src/experiments/stats.ts';

type Member = { id: number; token: string };

let ctx: TestContext;
let admin: Member;
let members: Member[];

beforeAll(async () => {
  ctx = await createTestContext({ RATE_LIMIT_MAX: 100_000 });
  admin = await ctx.admin();
  members = await ctx.createMembers(40);
});
afterAll(async () => ctx?.close());

const idem = () => randomBytes(8).toString('hex');
const AB = [
  { name: 'a', weight: 50, payload: { text: 'A' } },
  { name: 'b', weight: 50, payload: { text: 'B' } },
];

const adminCall = (method: 'POST' | 'PATCH', url: string, payload: object, key = idem()) =>
  ctx.app.inject({ method, url, headers: { ...bearer(admin.token), 'idempotency-key': key }, payload });
const create = (body: object, key?: string) => adminCall('POST', '/v1/admin/experiments', body, key);
const patch = (expKey: string, body: object, key?: string) => adminCall('PATCH', `/v1/admin/experiments/${expKey}`, body, key);
const variantOf = (m: Member, expKey: string) => ctx.app.inject({ url: `/v1/me/experiments/${expKey}`, headers: bearer(m.token) });
const postEvent = (m: Member, body: object, key: string | null = idem()) =>
  ctx.app.inject({ method: 'POST', url: '/v1/me/events', headers: { ...bearer(m.token), ...(key === null ? {} : { 'idempotency-key': key }) }, payload: body });
const results = (expKey: string) => ctx.app.inject({ url: `/v1/admin/experiments/${expKey}/results`, headers: bearer(admin.token) });

/** A new running experiment with a unique key. */
async function running(variants: Array<{ name: string; weight: number; payload: object }> = AB, extra: object = {}): Promise<string> {
  const key = `exp_${randomBytes(4).toString('hex')}`;
  const res = await create({ key, variants, conversionEvent: 'redeem', status: 'running', ...extra });
  expect(res.statusCode, res.body).toBe(201);
  return key;
}

const ok = (res: LightMyRequestResponse, status = 200) => {
  expect(res.statusCode, res.body).toBe(status);
  return res.json();
};

async function counts(): Promise<Record<string, number>> {
  const [row] = await ctx.sql<Array<Record<string, number>>>`
    SELECT (SELECT count(*)::int FROM experiments) AS experiments,
           (SELECT count(*)::int FROM experiment_exposures) AS exposures,
           (SELECT count(*)::int FROM experiment_events) AS events,
           (SELECT count(*)::int FROM audit_log) AS audit,
           (SELECT count(*)::int FROM admin_idempotency_keys) AS "adminKeys"`;
  return { ...row };
}

const exposures = async (expKey: string) =>
  ctx.sql<Array<{ userId: number; variant: string }>>`
    SELECT user_id::int AS "userId", variant FROM experiment_exposures WHERE experiment_key = ${expKey} ORDER BY user_id`;

describe('admin', () => {
  it('every admin route needs an admin token; the member routes need a token', async () => {
    const [m] = members;
    const routes: Array<{ method: 'GET' | 'POST' | 'PATCH'; url: string }> = [
      { method: 'GET', url: '/v1/admin/experiments' },
      { method: 'GET', url: '/v1/admin/experiments/points_prompt' },
      { method: 'POST', url: '/v1/admin/experiments' },
      { method: 'PATCH', url: '/v1/admin/experiments/points_prompt' },
      { method: 'GET', url: '/v1/admin/experiments/points_prompt/results' },
    ];
    const before = await counts();
    for (const r of routes) {
      const payload = r.method === 'GET' ? undefined : { key: 'sneaky', variants: AB, conversionEvent: 'redeem', status: 'running' };
      expectError(await ctx.app.inject({ ...r, payload, headers: { 'idempotency-key': idem() } }), 401, 'UNAUTHORIZED');
      expectError(await ctx.app.inject({ ...r, payload, headers: { ...bearer(m.token), 'idempotency-key': idem() } }), 403, 'FORBIDDEN');
    }
    expectError(await ctx.app.inject({ url: '/v1/me/experiments/points_prompt' }), 401, 'UNAUTHORIZED');
    expectError(await ctx.app.inject({ method: 'POST', url: '/v1/me/events', headers: { 'idempotency-key': idem() }, payload: { name: 'redeem' } }), 401, 'UNAUTHORIZED');
    expect(await counts()).toEqual(before);
  });

  it('the migration seeds points_prompt as a 50/50 draft of the two prompt texts, converting on redeem', async () => {
    const body = ok(await ctx.app.inject({ url: '/v1/admin/experiments/points_prompt', headers: bearer(admin.token) }));
    expect(body).toMatchObject({
      key: 'points_prompt',
      status: 'draft',
      conversionEvent: 'redeem',
      startsAt: null,
      endsAt: null,
      variants: [
        { name: 'control', weight: 50, payload: { text: 'You have {points} points — redeem them before they expire' } },
        { name: 'variant', weight: 50, payload: { text: 'Your {points} points can get you something today' } },
      ],
    });
    const list = ok(await ctx.app.inject({ url: '/v1/admin/experiments', headers: bearer(admin.token) }));
    expect(list.items.map((e: { key: string }) => e.key)).toContain('points_prompt');
    // a draft assigns nobody
    expectError(await variantOf(members[0], 'points_prompt'), 409, 'EXPERIMENT_NOT_RUNNING');
    expect(await exposures('points_prompt')).toEqual([]);
  });

  it('creates an experiment once per Idempotency-Key: a retry replays it, another body under the key is 422, the key taken is 409', async () => {
    const body = { key: 'replayed_exp', description: 'Retry me', variants: AB, conversionEvent: 'redeem' };
    const key = idem();
    const first = await create(body, key);
    expect(ok(first, 201)).toMatchObject({ key: 'replayed_exp', status: 'draft', description: 'Retry me', variants: AB });
    const again = await create(body, key);
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    expectError(await create({ ...body, description: 'Another' }, key), 422, 'IDEMPOTENCY_KEY_REUSED');
    const before = await counts();
    expectError(await create(body), 409, 'EXPERIMENT_KEY_TAKEN');
    expectError(await create({ ...body, key: 'points_prompt' }), 409, 'EXPERIMENT_KEY_TAKEN');
    expect(await counts()).toEqual(before);
    const [{ n }] = await ctx.sql`SELECT count(*)::int AS n FROM audit_log WHERE action = 'experiment.create' AND target_id = 'replayed_exp'`;
    expect(n).toBe(1);
  });

  it('refuses bad definitions with 400 and writes nothing', async () => {
    const good = { key: 'bad_input', variants: AB, conversionEvent: 'redeem' };
    const v = (name: string, weight: unknown = 1) => ({ name, weight, payload: {} });
    const cases: Array<[string, object]> = [
      ['a zero weight', { ...good, variants: [v('a', 0), v('b')] }],
      ['a negative weight', { ...good, variants: [v('a', -1), v('b')] }],
      ['a fractional weight', { ...good, variants: [v('a', 1.5), v('b')] }],
      ['a weight given as text', { ...good, variants: [v('a', 'ten'), v('b')] }],
      ['duplicate variant names', { ...good, variants: [v('a'), v('a')] }],
      ['one variant', { ...good, variants: [v('a')] }],
      ['eleven variants', { ...good, variants: Array.from({ length: 11 }, (_, i) => v(`v${i}`)) }],
      ['a variant without a payload', { ...good, variants: [{ name: 'a', weight: 1 }, v('b')] }],
      ['a payload that is not an object', { ...good, variants: [{ name: 'a', weight: 1, payload: 'text' }, v('b')] }],
      ['a variant name with a space', { ...good, variants: [v('a b'), v('b')] }],
      ['an upper-case key', { ...good, key: 'Bad_Input' }],
      ['a key with a space', { ...good, key: 'bad input' }],
      ['a key of 65 characters', { ...good, key: 'k'.repeat(65) }],
      ['no conversion event', { key: 'bad_input', variants: AB }],
      ['no variants', { key: 'bad_input', conversionEvent: 'redeem' }],
      ['an unknown status', { ...good, status: 'paused' }],
      ['an end before the start', { ...good, startsAt: '2030-01-02T00:00:00Z', endsAt: '2030-01-01T00:00:00Z' }],
      ['a start that is not a date', { ...good, startsAt: 'tomorrow' }],
      ['an unknown field', { ...good, colour: 'red' }],
    ];
    const before = await counts();
    for (const [why, body] of cases) expect((await create(body)).statusCode, why).toBe(400);
    expectError(await create(cases[0][1]), 400, 'VALIDATION_FAILED');
    expectError(await create(cases[4][1]), 400, 'VALIDATION_FAILED');
    expectError(await ctx.app.inject({ method: 'POST', url: '/v1/admin/experiments', headers: bearer(admin.token), payload: good }), 400, 'IDEMPOTENCY_KEY_REQUIRED');
    // PATCH: nothing to change, duplicate names, a bad weight, a bad key in the path
    expectError(await patch('points_prompt', {}), 400, 'VALIDATION_FAILED');
    expectError(await patch('points_prompt', { variants: [v('x'), v('x')] }), 400, 'VALIDATION_FAILED');
    expectError(await patch('points_prompt', { variants: [v('x', 0), v('y')] }), 400, 'VALIDATION_FAILED');
    expectError(await patch('Not A Key', { description: 'x' }), 400, 'VALIDATION_FAILED');
    expectError(await patch('no_such_experiment', { description: 'x' }), 404, 'EXPERIMENT_NOT_FOUND');
    expect(await counts()).toEqual(before);
  });

  it('moves the status only forward; once out of draft the variant names and the conversion event are fixed, weights and payloads are not', async () => {
    const key = `states_${randomBytes(3).toString('hex')}`;
    ok(await create({ key, variants: AB, conversionEvent: 'redeem' }), 201);
    // in draft anything goes, names included
    const renamed = [{ ...AB[0], name: 'control' }, { ...AB[1], name: 'treatment' }];
    expect(ok(await patch(key, { variants: renamed, conversionEvent: 'purchase' })).variants.map((x: { name: string }) => x.name)).toEqual(['control', 'treatment']);
    expect(ok(await patch(key, { status: 'running' })).status).toBe('running');

    const before = await counts();
    expectError(await patch(key, { status: 'draft' }), 409, 'EXPERIMENT_STATE_CONFLICT');
    expectError(await patch(key, { variants: AB }), 409, 'EXPERIMENT_STATE_CONFLICT');
    expectError(await patch(key, { variants: [renamed[1], renamed[0]] }), 409, 'EXPERIMENT_STATE_CONFLICT');
    expectError(await patch(key, { variants: [...renamed, { name: 'third', weight: 1, payload: {} }] }), 409, 'EXPERIMENT_STATE_CONFLICT');
    expectError(await patch(key, { conversionEvent: 'redeem' }), 409, 'EXPERIMENT_STATE_CONFLICT');
    expect(await counts()).toEqual(before);

    const reweighted = [{ ...renamed[0], weight: 10 }, { ...renamed[1], weight: 90, payload: { text: 'new' } }];
    expect(ok(await patch(key, { variants: reweighted, description: 'tuned', status: 'running' }))).toMatchObject({ variants: reweighted, description: 'tuned' });
    expect(ok(await patch(key, { status: 'stopped' })).status).toBe('stopped');
    expectError(await patch(key, { status: 'running' }), 409, 'EXPERIMENT_STATE_CONFLICT');
    expectError(await patch(key, { status: 'draft' }), 409, 'EXPERIMENT_STATE_CONFLICT');
    expect(ok(await patch(key, { description: 'post-mortem notes' })).description).toBe('post-mortem notes');
    // a draft may be dropped straight to stopped
    const drop = `drop_${randomBytes(3).toString('hex')}`;
    ok(await create({ key: drop, variants: AB, conversionEvent: 'redeem' }), 201);
    expect(ok(await patch(drop, { status: 'stopped' })).status).toBe('stopped');
  });
});

describe('assignment', () => {
  it('assigns only running experiments inside their window; otherwise 409 EXPERIMENT_NOT_RUNNING or 404, and records nothing', async () => {
    const [m] = members;
    const future = await running(AB, { startsAt: new Date(Date.now() + 3_600_000).toISOString() });
    const past = await running(AB, { startsAt: '2020-01-01T00:00:00Z', endsAt: new Date(Date.now() - 1000).toISOString() });
    const stopped = await running();
    ok(await patch(stopped, { status: 'stopped' }));
    const before = await counts();
    for (const key of [future, past, stopped]) expectError(await variantOf(m, key), 409, 'EXPERIMENT_NOT_RUNNING');
    expectError(await variantOf(m, 'no_such_experiment'), 404, 'EXPERIMENT_NOT_FOUND');
    expectError(await variantOf(m, 'NOT-a-key!'), 400, 'VALIDATION_FAILED');
    expect(await counts()).toEqual(before);
    // inside the window it assigns
    const open = await running(AB, { startsAt: '2020-01-01T00:00:00Z', endsAt: new Date(Date.now() + 3_600_000).toISOString() });
    expect(ok(await variantOf(m, open)).variant).toMatch(/^[ab]$/);
  });

  it('is sticky: the same variant and payload on every call, one exposure per member, the variant the assignment function gives', async () => {
    const key = await running();
    const group = members.slice(0, 20);
    const first = new Map<number, string>();
    for (const m of group) {
      const body = ok(await variantOf(m, key));
      expect(body).toEqual({ variant: body.variant, payload: { text: body.variant.toUpperCase() } });
      expect(body.variant).toBe(assignVariant(m.id, key, AB).name);
      first.set(m.id, body.variant);
    }
    for (let round = 0; round < 3; round++) {
      for (const m of group) expect(ok(await variantOf(m, key)).variant).toBe(first.get(m.id));
    }
    const rows = await exposures(key);
    expect(rows).toEqual(group.map((m) => ({ userId: m.id, variant: first.get(m.id) })).sort((x, y) => x.userId - y.userId));
    // the variant is cached in the member's slot
    expect(await ctx.redis.get(ctx.keys.experimentAssignment(group[0].id, key))).toBe(first.get(group[0].id));
  });

  it('a weight change moves no member already assigned (cache or no cache); members assigned later follow the new weights', async () => {
    const key = await running();
    const early = members.slice(0, 20);
    const late = members.slice(20, 40);
    const before = new Map<number, string>();
    for (const m of early) before.set(m.id, ok(await variantOf(m, key)).variant);
    expect(new Set(before.values()).size).toBe(2);

    // everything to b from now on
    const allB = [{ ...AB[0], weight: 1 }, { ...AB[1], weight: 999_999 }];
    ok(await patch(key, { variants: allB }));
    for (const m of early) expect(ok(await variantOf(m, key)).variant, `member ${m.id}`).toBe(before.get(m.id));
    // without the Redis cache the answer comes from Postgres, still the same
    // one DEL per key: members' keys live in different slots on a cluster
    await Promise.all(early.map((m) => ctx.redis.del(ctx.keys.experimentAssignment(m.id, key))));
    for (const m of early) expect(ok(await variantOf(m, key)).variant, `member ${m.id}`).toBe(before.get(m.id));
    for (const m of late) {
      const got = ok(await variantOf(m, key)).variant;
      expect(got).toBe(assignVariant(m.id, key, allB).name);
    }
    expect((await exposures(key)).length).toBe(40);
  });

  it('concurrent first calls of one member record exactly one exposure and all answer its variant', async () => {
    const key = await running();
    for (const m of members.slice(0, 5)) {
      const answers = await Promise.all(Array.from({ length: 16 }, () => variantOf(m, key)));
      const variants = answers.map((r) => ok(r).variant);
      expect(new Set(variants).size).toBe(1);
      const rows = (await exposures(key)).filter((r) => r.userId === m.id);
      expect(rows).toEqual([{ userId: m.id, variant: variants[0] }]);
    }
  });

  it('splits 300 members through the API as the assignment function does, within chi-square tolerance of 1:2', async () => {
    const variants = [
      { name: 'one', weight: 1, payload: {} },
      { name: 'two', weight: 2, payload: {} },
    ];
    const key = await running(variants);
    const crowd = await ctx.createMembers(300);
    const tally = { one: 0, two: 0 };
    for (let i = 0; i < crowd.length; i += 25) {
      const batch = await Promise.all(crowd.slice(i, i + 25).map((m) => variantOf(m, key)));
      batch.forEach((res, j) => {
        const got = ok(res).variant as 'one' | 'two';
        expect(got).toBe(assignVariant(crowd[i + j].id, key, variants).name);
        tally[got]++;
      });
    }
    const p = chiSquarePValue(chiSquareStatistic([tally.one, tally.two], [100, 200]), 1);
    expect(p, JSON.stringify(tally)).toBeGreaterThan(0.001);
    expect((await exposures(key)).length).toBe(300);
  });
});

describe('events', () => {
  it('an event is recorded once per Idempotency-Key: a retry replays the same answer and writes nothing; another body under the key is 422', async () => {
    const key = await running();
    const [m] = members;
    const variant = ok(await variantOf(m, key)).variant;
    const k = idem();
    const first = await postEvent(m, { name: 'redeem', experiment: key, value: 120 }, k);
    const body = ok(first, 201);
    expect(body).toMatchObject({ name: 'redeem', experiment: key, variant, value: 120, counted: true });
    const before = await counts();
    const again = await postEvent(m, { name: 'redeem', experiment: key, value: 120 }, k);
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(body);
    const concurrent = await Promise.all(Array.from({ length: 8 }, () => postEvent(m, { name: 'redeem', experiment: key, value: 120 }, k)));
    for (const res of concurrent) expect(ok(res, 201)).toEqual(body);
    expectError(await postEvent(m, { name: 'redeem', experiment: key, value: 121 }, k), 422, 'IDEMPOTENCY_KEY_REUSED');
    expect(await counts()).toEqual(before);
    // keys belong to their member: another member may use the same one
    expect(ok(await postEvent(members[1], { name: 'redeem' }, k), 201).experiment).toBeNull();
    // concurrent first sends of a new key: one row
    const k2 = idem();
    const firsts = await Promise.all(Array.from({ length: 8 }, () => postEvent(m, { name: 'click', experiment: key }, k2)));
    expect(new Set(firsts.map((r) => ok(r, 201).id)).size).toBe(1);
    const [{ n }] = await ctx.sql`SELECT count(*)::int AS n FROM experiment_events WHERE user_id = ${m.id} AND idem_key = ${k2}`;
    expect(n).toBe(1);
  });

  it('counts a conversion only for an exposed member, for the conversion event, while the experiment runs', async () => {
    const key = await running();
    const [exposed, unexposed, late] = members.slice(10, 13);
    ok(await variantOf(exposed, key));
    // recorded, not counted: unexposed, another event name, no experiment named
    expect(ok(await postEvent(unexposed, { name: 'redeem', experiment: key, value: 50 }), 201)).toMatchObject({ variant: null, counted: false });
    expect(ok(await postEvent(exposed, { name: 'click', experiment: key, value: 5 }), 201)).toMatchObject({ counted: false });
    expect(ok(await postEvent(exposed, { name: 'redeem' }), 201)).toMatchObject({ experiment: null, variant: null, counted: false });
    // counted
    expect(ok(await postEvent(exposed, { name: 'redeem', experiment: key, value: 30 }), 201)).toMatchObject({ counted: true });
    // a member exposed after an unexposed event: the earlier event stays uncounted
    expect(ok(await postEvent(late, { name: 'redeem', experiment: key }), 201).counted).toBe(false);
    ok(await variantOf(late, key));
    const res = ok(await results(key));
    const converted = res.variants.reduce((s: number, v: { converted: number }) => s + v.converted, 0);
    const exposedTotal = res.variants.reduce((s: number, v: { exposed: number }) => s + v.exposed, 0);
    expect({ converted, exposedTotal }).toEqual({ converted: 1, exposedTotal: 2 });
    // stopped: later conversions are recorded, not counted
    ok(await patch(key, { status: 'stopped' }));
    expect(ok(await postEvent(late, { name: 'redeem', experiment: key }), 201)).toMatchObject({ counted: false });
    const [{ n }] = await ctx.sql`SELECT count(*)::int AS n FROM experiment_events WHERE experiment_key = ${key}`;
    expect(n).toBe(5);
  });

  it('refuses bad events with a 4xx and writes nothing', async () => {
    const [m] = members;
    const before = await counts();
    expectError(await postEvent(m, { name: 'redeem' }, null), 400, 'IDEMPOTENCY_KEY_REQUIRED');
    expectError(await postEvent(m, { name: 'redeem' }, 'not a valid key!'), 400, 'VALIDATION_FAILED');
    const bad: Array<[string, object]> = [
      ['no name', {}],
      ['an empty name', { name: '' }],
      ['an upper-case name', { name: 'Redeem' }],
      ['a value given as text', { name: 'redeem', value: 'ten' }],
      ['a value out of range', { name: 'redeem', value: 1e13 }],
      ['a bad experiment key', { name: 'redeem', experiment: 'Bad Key' }],
      ['an unknown field', { name: 'redeem', extra: 1 }],
    ];
    for (const [why, body] of bad) {
      const res = await postEvent(m, body);
      expect(res.statusCode, why).toBe(400);
      expectError(res, 400, 'VALIDATION_FAILED');
    }
    expectError(await postEvent(m, { name: 'redeem', experiment: 'no_such_experiment' }), 404, 'EXPERIMENT_NOT_FOUND');
    expect(await counts()).toEqual(before);
  });
});

describe('results', () => {
  it('equal the fixture computed by hand: rates, mean values, lift with its 95% CI, z and p, the small-sample warning', async () => {
    const variants = [
      { name: 'control', weight: 40, payload: {} },
      { name: 'bold', weight: 40, payload: {} },
      { name: 'tiny', weight: 20, payload: {} },
    ];
    const key = await running(variants);
    // exposures: control 200, bold 200, tiny 50 (member ids are synthetic: results read only these tables)
    const exposed = (variant: string, from: number, n: number) =>
      Array.from({ length: n }, (_, i) => ({ experiment_key: key, user_id: from + i, variant }));
    await ctx.sql`INSERT INTO experiment_exposures ${ctx.sql([...exposed('control', 1_000_000, 200), ...exposed('bold', 2_000_000, 200), ...exposed('tiny', 3_000_000, 50)])}`;
    // counted conversions: control 20 members × value 10; bold 34 members × value 20, one of them twice more (+5)
    // (counted as one member); tiny 5 members without a value
    const ev = (user: number, variant: string, value: number | null, counted = true, name = 'redeem') => ({
      user_id: user, idem_key: idem(), request_hash: 'fixture', name, experiment_key: key, variant, value, counted,
    });
    const events = [
      ...Array.from({ length: 20 }, (_, i) => ev(1_000_000 + i, 'control', 10)),
      ...Array.from({ length: 34 }, (_, i) => ev(2_000_000 + i, 'bold', 20)),
      ev(2_000_000, 'bold', 5),
      ...Array.from({ length: 5 }, (_, i) => ev(3_000_000 + i, 'tiny', null)),
      // not counted: these change nothing
      ev(1_000_100, 'control', 1000, false, 'click'),
      ev(4_000_000, null as unknown as string, 1000, false),
    ];
    await ctx.sql`INSERT INTO experiment_events ${ctx.sql(events)}`;

    const body = ok(await results(key));
    expect(body).toMatchObject({ key, status: 'running', conversionEvent: 'redeem', minSample: 100 });
    const [control, bold, tiny] = body.variants;

    // control: 20 / 200 = 0.1; value 200 / 200 exposed = 1
    expect(control).toEqual({
      name: 'control', weight: 40, exposed: 200, converted: 20, conversionRate: 0.1, meanValue: 1,
      lift: null, zScore: null, pValue: null, warning: null,
    });

    // bold: 34 / 200 = 0.17; value (34 × 20 + 5) / 200 = 3.425
    // difference 0.07, relative 0.07 / 0.1 = 0.7
    // pooled (20 + 34) / 400 = 0.135; SE = √(0.135 × 0.865 × (1/200 + 1/200)) = 0.0341723571…; z = 2.0484393…
    // p = 2 (1 − Φ(2.0484393)) = 0.0405170
    // unpooled SE = √(0.1 × 0.9 / 200 + 0.17 × 0.83 / 200) = √0.0011555 = 0.0339926…; CI = 0.07 ± 1.959964 × 0.0339926
    expect(bold).toMatchObject({ name: 'bold', exposed: 200, converted: 34, warning: null });
    expect(bold.conversionRate).toBeCloseTo(0.17, 12);
    expect(bold.meanValue).toBeCloseTo(3.425, 12);
    expect(bold.lift.difference).toBeCloseTo(0.07, 12);
    expect(bold.lift.relative).toBeCloseTo(0.7, 12);
    expect(bold.lift.ciLow).toBeCloseTo(0.0033756376, 9);
    expect(bold.lift.ciHigh).toBeCloseTo(0.1366243624, 9);
    expect(bold.zScore).toBeCloseTo(2.0484393128, 9);
    expect(bold.pValue).toBeCloseTo(0.0405169728, 9);

    // tiny: 5 / 50 = 0.1, the control's rate: no difference, z 0, p 1;
    // unpooled SE = √(0.09 / 200 + 0.09 / 50) = 0.0474342; CI = ± 0.0929692548; 50 < 100: warned
    expect(tiny).toMatchObject({ name: 'tiny', exposed: 50, converted: 5, conversionRate: 0.1, meanValue: 0, zScore: 0, pValue: 1 });
    expect(tiny.lift.difference).toBe(0);
    expect(tiny.lift.relative).toBe(0);
    expect(tiny.lift.ciLow).toBeCloseTo(-0.0929692548, 9);
    expect(tiny.lift.ciHigh).toBeCloseTo(0.0929692548, 9);
    expect(tiny.warning).toMatch(/50 exposed.*minimum sample of 100/);
  });

  it('an experiment nobody saw has empty results, every variant warned; an unknown one is 404', async () => {
    const key = await running();
    const body = ok(await results(key));
    for (const v of body.variants) {
      expect(v).toMatchObject({ exposed: 0, converted: 0, conversionRate: null, meanValue: null, lift: null, zScore: null, pValue: null });
      expect(v.warning).toMatch(/minimum sample/);
    }
    expectError(await results('no_such_experiment'), 404, 'EXPERIMENT_NOT_FOUND');
  });
});
