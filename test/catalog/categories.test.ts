/**
 * Categories: admin CRUD (Idempotency-Key, audited), validation, the public list, and what goods
 * and goods campaigns pointing at a category mean for its deletion.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/context.ts';
import { expectError } from '../api/helpers.ts';
import { adminWrite, get } from './support.ts';

let ctx: TestContext;
let admin: { id: number; token: string };

beforeAll(async () => {
  ctx = await createTestContext();
  admin = await ctx.admin();
});
afterAll(async () => ctx?.close());

const create = (body: Record<string, unknown>, key?: string) => adminWrite(ctx, admin.token, 'POST', '/v1/admin/categories', body, key);

describe('categories', () => {
  it('creates, reads, renames and deletes a category, each write audited once', async () => {
    const made = await create({ name: 'Kitchen', slug: 'kitchen', position: 3 }, 'kitchen-1');
    expect(made.statusCode, made.body).toBe(201);
    const c = made.json();
    expect(c).toMatchObject({ name: 'Kitchen', slug: 'kitchen', position: 3, goodsCount: 0 });
    const replay = await create({ name: 'Kitchen', slug: 'kitchen', position: 3 }, 'kitchen-1');
    expect(replay.statusCode).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.json()).toEqual(c);

    expect((await get(ctx, `/v1/admin/categories/${c.id}`, admin.token)).json()).toEqual(c);
    const renamed = await adminWrite(ctx, admin.token, 'PATCH', `/v1/admin/categories/${c.id}`, { name: 'Kitchen & dining', slug: 'kitchen-dining' });
    expect(renamed.statusCode, renamed.body).toBe(200);
    expect(renamed.json()).toMatchObject({ id: c.id, name: 'Kitchen & dining', slug: 'kitchen-dining', position: 3 });

    const removed = await adminWrite(ctx, admin.token, 'DELETE', `/v1/admin/categories/${c.id}`);
    expect(removed.statusCode, removed.body).toBe(200);
    expect(removed.json()).toEqual({ id: c.id, deleted: true });
    expectError(await get(ctx, `/v1/admin/categories/${c.id}`, admin.token), 404, 'CATEGORY_NOT_FOUND');
    const audits = await ctx.sql<Array<{ action: string }>>`
      SELECT action FROM audit_log WHERE target_type = 'category' AND target_id = ${String(c.id)} ORDER BY id`;
    expect(audits.map((a) => a.action)).toEqual(['category.create', 'category.update', 'category.delete']);
  });

  it('lists categories publicly in display order with their switched-on goods counted', async () => {
    const b = (await create({ name: 'Books', slug: 'books', position: 2 })).json();
    const a = (await create({ name: 'Art', slug: 'art', position: 1 })).json();
    const z = (await create({ name: 'Zines', slug: 'zines', position: 2 })).json();
    await ctx.createGoods({ name: 'Novel', categoryId: b.id });
    await ctx.createGoods({ name: 'Atlas', categoryId: b.id });
    await ctx.createGoods({ name: 'Out of print', categoryId: b.id, active: false });
    const res = await get(ctx, '/v1/categories');
    expect(res.statusCode).toBe(200);
    const items = res.json().items as Array<{ id: number; goodsCount: number }>;
    const mine = items.filter((i) => [a.id, b.id, z.id].includes(i.id));
    expect(mine.map((i) => [i.id, i.goodsCount])).toEqual([
      [a.id, 0],
      [b.id, 2],
      [z.id, 0],
    ]);
    const admins = (await get(ctx, '/v1/admin/categories', admin.token)).json().items;
    expect(admins).toEqual(items);
  });

  it('refuses a taken slug with 409 CATEGORY_TAKEN, on create and on rename, writing nothing', async () => {
    const first = (await create({ name: 'Garden', slug: 'garden' })).json();
    const other = (await create({ name: 'Tools', slug: 'tools' })).json();
    expectError(await create({ name: 'Garden 2', slug: 'garden' }), 409, 'CATEGORY_TAKEN');
    expectError(await adminWrite(ctx, admin.token, 'PATCH', `/v1/admin/categories/${other.id}`, { slug: 'garden' }), 409, 'CATEGORY_TAKEN');
    expect((await get(ctx, `/v1/admin/categories/${other.id}`, admin.token)).json().slug).toBe('tools');
    const [{ n }] = await ctx.sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM categories WHERE slug = 'garden'`;
    expect(n).toBe(1);
    expect(first.slug).toBe('garden');
  });

  it('refuses to delete a category goods or a goods campaign point at (409 CATEGORY_IN_USE), and deletes it once they have moved', async () => {
    const c = (await create({ name: 'Toys', slug: 'toys' })).json();
    const g = await ctx.createGoods({ name: 'Kite', categoryId: c.id, dynamicPricing: true });
    expectError(await adminWrite(ctx, admin.token, 'DELETE', `/v1/admin/categories/${c.id}`), 409, 'CATEGORY_IN_USE');
    const moved = await adminWrite(ctx, admin.token, 'PATCH', `/v1/admin/goods/${g.id}`, { categoryId: null });
    expect(moved.json().categoryId).toBeNull();
    const camp = await adminWrite(ctx, admin.token, 'POST', '/v1/admin/goods-campaigns', {
      categoryId: c.id,
      discount: 0.9,
      startsAt: '2030-01-01T00:00:00Z',
      endsAt: '2030-01-02T00:00:00Z',
    });
    expect(camp.statusCode, camp.body).toBe(201);
    expectError(await adminWrite(ctx, admin.token, 'DELETE', `/v1/admin/categories/${c.id}`), 409, 'CATEGORY_IN_USE');
    const retargeted = await adminWrite(ctx, admin.token, 'PATCH', `/v1/admin/goods-campaigns/${camp.json().id}`, { goodsIds: [g.id] });
    expect(retargeted.json()).toMatchObject({ goodsIds: [g.id], categoryId: null });
    expect((await adminWrite(ctx, admin.token, 'DELETE', `/v1/admin/categories/${c.id}`)).statusCode).toBe(200);
  });

  it.each([
    ['no name', { slug: 'x' }],
    ['blank name', { name: '   ', slug: 'x' }],
    ['name of 65 characters', { name: 'n'.repeat(65), slug: 'x' }],
    ['no slug', { name: 'X' }],
    ['upper-case slug', { name: 'X', slug: 'Kitchen' }],
    ['slug with a space', { name: 'X', slug: 'two words' }],
    ['slug ending in a hyphen', { name: 'X', slug: 'toys-' }],
    ['negative position', { name: 'X', slug: 'x', position: -1 }],
    ['position a string', { name: 'X', slug: 'x', position: '1' }],
    ['unknown field', { name: 'X', slug: 'x', parent: 1 }],
  ])('refuses a category with %s (400), writing nothing', async (_name, body) => {
    const [{ before }] = await ctx.sql<Array<{ before: number }>>`SELECT count(*)::int AS before FROM categories`;
    expectError(await create(body), 400, 'VALIDATION_FAILED');
    const [{ after }] = await ctx.sql<Array<{ after: number }>>`SELECT count(*)::int AS after FROM categories`;
    expect(after).toBe(before);
  });

  it('answers 404 for a category that does not exist, 400 for a malformed id, 403 to a member, 400 without a key', async () => {
    expectError(await adminWrite(ctx, admin.token, 'PATCH', '/v1/admin/categories/2000000000', { name: 'X' }), 404, 'CATEGORY_NOT_FOUND');
    expectError(await adminWrite(ctx, admin.token, 'DELETE', '/v1/admin/categories/2000000000'), 404, 'CATEGORY_NOT_FOUND');
    expectError(await get(ctx, '/v1/admin/categories/abc', admin.token), 400, 'VALIDATION_FAILED');
    expectError(await get(ctx, '/v1/admin/categories/3000000000', admin.token), 400, 'VALIDATION_FAILED');
    const [m] = await ctx.createMembers(1);
    expectError(await adminWrite(ctx, m.token, 'POST', '/v1/admin/categories', { name: 'X', slug: 'x' }), 403, 'FORBIDDEN');
    const noKey = await ctx.app.inject({ method: 'POST', url: '/v1/admin/categories', headers: { authorization: `Bearer ${admin.token}` }, payload: { name: 'X', slug: 'x' } });
    expectError(noKey, 400, 'IDEMPOTENCY_KEY_REQUIRED');
  });

  it('a goods item must name an existing category', async () => {
    const res = await adminWrite(ctx, admin.token, 'POST', '/v1/admin/goods', { name: 'Orphan', type: 'physical', pointsPrice: 5, stock: 1, categoryId: 2_000_000_000 });
    expectError(res, 400, 'VALIDATION_FAILED');
  });
});
