/**
 * The audit trail of admin goods changes: one entry per create, patch and restock, its data the
 * request as a JSON object (queryable with ->), the actor recorded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/context.ts';
import { bearer } from './helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

describe('goods audit log', () => {
  it('records create, patch and restock with the actor and the request as a JSON object', async () => {
    const admin = await ctx.admin();
    const h = (key: string) => ({ ...bearer(admin.token), 'idempotency-key': key });
    const created = await ctx.app.inject({
      method: 'POST',
      url: '/v1/admin/goods',
      headers: h('audit-create'),
      payload: { name: 'Audited', type: 'virtual', pointsPrice: 9, stock: 2 },
    });
    const id = created.json().id as number;
    await ctx.app.inject({ method: 'PATCH', url: `/v1/admin/goods/${id}`, headers: h('audit-patch'), payload: { pointsPrice: 11 } });
    await ctx.app.inject({ method: 'POST', url: `/v1/admin/goods/${id}/restock`, headers: h('audit-restock'), payload: { quantity: 4 } });
    const rows = await ctx.sql<Array<{ action: string; actorId: number; kind: string; data: unknown }>>`
      SELECT action, actor_id AS "actorId", jsonb_typeof(data) AS kind, data FROM audit_log
      WHERE target_type = 'goods' AND target_id = ${String(id)} ORDER BY id`;
    expect(rows).toEqual([
      { action: 'goods.create', actorId: admin.id, kind: 'object', data: { name: 'Audited', type: 'virtual', pointsPrice: 9, stock: 2 } },
      { action: 'goods.update', actorId: admin.id, kind: 'object', data: { pointsPrice: 11 } },
      { action: 'goods.restock', actorId: admin.id, kind: 'object', data: { quantity: 4 } },
    ]);
  });
});
