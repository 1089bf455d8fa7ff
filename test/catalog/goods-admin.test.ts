/**
 * The catalog fields of goods through the admin routes: cash price, category, tags, image, daily
 * limit, dynamic pricing, and the four types with their settings (coupon validity, VIP days).
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

const create = (body: Record<string, unknown>) => adminWrite(ctx, admin.token, 'POST', '/v1/admin/goods', { stock: 5, pointsPrice: 100, ...body });
const patch = (id: number, body: Record<string, unknown>) => adminWrite(ctx, admin.token, 'PATCH', `/v1/admin/goods/${id}`, body);

describe('goods catalog fields', () => {
  it('stores and shows cash price, category, tags, image, limits and dynamic pricing', async () => {
    const cat = (await adminWrite(ctx, admin.token, 'POST', '/v1/admin/categories', { name: 'Audio', slug: 'audio' })).json();
    const res = await create({
      name: 'Earbuds',
      description: 'Small',
      type: 'physical',
      categoryId: cat.id,
      tags: ['Audio', 'WIRELESS', 'audio'],
      imageUrl: 'https://cdn.example.com/earbuds.png',
      cashPrice: 1999,
      perUserLimit: 3,
      dailyLimit: 1,
      dynamicPricing: true,
    });
    expect(res.statusCode, res.body).toBe(201);
    const g = res.json();
    expect(g).toMatchObject({
      categoryId: cat.id,
      tags: ['audio', 'wireless'],
      imageUrl: 'https://cdn.example.com/earbuds.png',
      cashPrice: 1999,
      perUserLimit: 3,
      dailyLimit: 1,
      dynamicPricing: true,
      couponValidDays: null,
      vipDays: null,
      price: 100,
    });
    expect((await get(ctx, `/v1/goods/${g.id}`)).json()).toEqual({ ...g });
    expect(await ctx.redis.hgetall(ctx.keys.goods(g.id))).toMatchObject({ daily: '1', dyn: '1', limit: '3', price: '100' });

    const cleared = await patch(g.id, { categoryId: null, imageUrl: null, cashPrice: null, dynamicPricing: false, tags: [] });
    expect(cleared.json()).toMatchObject({ categoryId: null, imageUrl: null, cashPrice: null, dynamicPricing: false, tags: [] });
    expect(await ctx.redis.hget(ctx.keys.goods(g.id), 'dyn')).toBe('0');
  });

  it('gives coupon and VIP goods their settings, 30 days by default, and moves them with the type', async () => {
    const coupon = (await create({ name: 'Coupon', type: 'coupon' })).json();
    expect(coupon).toMatchObject({ type: 'coupon', couponValidDays: 30, vipDays: null });
    const vip = (await create({ name: 'VIP', type: 'vip', vipDays: 90 })).json();
    expect(vip).toMatchObject({ type: 'vip', couponValidDays: null, vipDays: 90 });
    const virtual = (await create({ name: 'E-book', type: 'virtual' })).json();
    expect(virtual).toMatchObject({ type: 'virtual', couponValidDays: null, vipDays: null });

    expect((await patch(coupon.id, { couponValidDays: 45 })).json().couponValidDays).toBe(45);
    expect((await patch(coupon.id, { name: 'Renamed coupon' })).json().couponValidDays).toBe(45);
    expect((await patch(coupon.id, { type: 'vip' })).json()).toMatchObject({ type: 'vip', couponValidDays: null, vipDays: 30 });
    expect((await patch(coupon.id, { type: 'coupon', couponValidDays: 7 })).json()).toMatchObject({ couponValidDays: 7, vipDays: null });
    expect((await patch(virtual.id, { type: 'physical' })).json()).toMatchObject({ couponValidDays: null, vipDays: null });

    expectError(await patch(virtual.id, { vipDays: 10 }), 400, 'VALIDATION_FAILED');
    expectError(await patch(vip.id, { type: 'physical', vipDays: 10 }), 400, 'VALIDATION_FAILED');
    expectError(await create({ name: 'Bad', type: 'vip', couponValidDays: 10 }), 400, 'VALIDATION_FAILED');
    expect((await get(ctx, `/v1/goods/${vip.id}`)).json().vipDays).toBe(90);
  });
});
