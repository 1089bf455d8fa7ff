/**
 * GET /v1/goods: full-text and partial-word search over name, description and tags; category,
 * tag, list-price and live-stock filters; the four sorts paged with keyset cursors that hold
 * still while the catalog changes underneath; the hot list served from Redis.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refreshHotGoods } from '../../src/goods/hot.ts';
import { startCatalog } from '../../workers/catalog.ts';
import { createLogger } from '../../workers/logger.ts';
import { createTestContext, type TestContext } from '../support/context.ts';
import { adminWrite, get, redeem, settled } from './support.ts';

let ctx: TestContext;
let admin: { id: number; token: string };
const ids: Record<string, number> = {};
let audio: number;
let home: number;

interface Listed {
  id: number;
  name: string;
  pointsPrice: number;
  stock: number;
}

const search = async (qs: string) => {
  const res = await get(ctx, `/v1/goods?${qs}`);
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as { items: Listed[]; nextCursor: string | null };
};
const names = async (qs: string) => (await search(qs)).items.map((i) => i.name).sort();

/** Every page of a listing, following nextCursor. */
async function allPages(qs: string, from: string | null = null): Promise<{ names: string[]; pages: number }> {
  const out: string[] = [];
  let cursor = from;
  let pages = 0;
  do {
    const page = await search(`${qs}${cursor ? `&cursor=${cursor}` : ''}`);
    out.push(...page.items.map((i) => i.name));
    cursor = page.nextCursor;
    pages++;
  } while (cursor && pages < 50);
  return { names: out, pages };
}

async function category(name: string, slug: string) {
  const res = await adminWrite(ctx, admin.token, 'POST', '/v1/admin/categories', { name, slug });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().id as number;
}

async function goods(body: Record<string, unknown>) {
  const res = await adminWrite(ctx, admin.token, 'POST', '/v1/admin/goods', { type: 'physical', stock: 10, ...body });
  expect(res.statusCode, res.body).toBe(201);
  ids[body.name as string] = res.json().id;
  return res.json().id as number;
}

/** A persisted catalog redemption of an item, `daysAgo` days back. */
async function pastRedemption(goodsId: number, daysAgo: number, o: { source?: string; status?: string } = {}) {
  const id = randomBytes(16).toString('hex');
  await ctx.sql`
    INSERT INTO redemptions (id, op_id, exchange_no, user_id, goods_id, quantity, points_spent, status, source, created_at)
    VALUES (${id}, ${id}, ${`PMT${id.slice(0, 20)}`}, ${admin.id}, ${goodsId}, 1, 1, ${o.status ?? 'confirmed'}, ${o.source ?? 'order'},
            now() - make_interval(secs => ${daysAgo * 86_400}))`;
}

beforeAll(async () => {
  ctx = await createTestContext();
  admin = await ctx.admin();
  audio = await category('Audio', 'audio');
  home = await category('Home', 'home');
  await goods({ name: 'Wireless Headphones', description: 'Noise cancelling, over-ear', tags: ['Audio', 'bluetooth'], categoryId: audio, pointsPrice: 500, stock: 5 });
  await goods({ name: 'Coffee Mug', description: 'Ceramic, 350 ml', tags: ['kitchen'], categoryId: home, pointsPrice: 120, stock: 0 });
  await goods({ name: 'Travel Mug', description: 'Keeps coffee hot', tags: ['kitchen', 'travel'], categoryId: home, pointsPrice: 150, stock: 3 });
  await goods({ name: 'Bluetooth Speaker', description: 'Portable speaker', tags: ['audio'], categoryId: audio, pointsPrice: 800 });
  await goods({ name: 'Gift Card', type: 'coupon', description: 'Store credit', tags: ['gift'], pointsPrice: 1000, stock: 100, couponValidDays: 60 });
  await goods({ name: 'VIP Month', type: 'vip', description: 'Premium membership', tags: ['vip'], pointsPrice: 300 });
});
afterAll(async () => ctx?.close());

describe('text search', () => {
  it('finds whole words in name, description and tags (full text)', async () => {
    expect(await names('q=coffee')).toEqual(['Coffee Mug', 'Travel Mug']);
    expect(await names('q=bluetooth')).toEqual(['Bluetooth Speaker', 'Wireless Headphones']);
    expect(await names('q=travel%20mug')).toEqual(['Travel Mug']);
    expect(await names('q=membership')).toEqual(['VIP Month']);
  });

  it('finds parts of words through the trigram path', async () => {
    expect(await names('q=headph')).toEqual(['Wireless Headphones']);
    expect(await names('q=phones')).toEqual(['Wireless Headphones']);
    expect(await names('q=eaker')).toEqual(['Bluetooth Speaker']);
    expect(await names('q=trav%20mu')).toEqual(['Travel Mug']);
    expect(await names('q=HEADPH')).toEqual(['Wireless Headphones']);
  });

  it('takes the websearch syntax of the full-text path (exclusion, phrases)', async () => {
    expect(await names('q=mug%20-travel')).toEqual(['Coffee Mug']);
    expect(await names(`q=${encodeURIComponent('"keeps coffee"')}`)).toEqual(['Travel Mug']);
  });

  it('treats LIKE wildcards in the query as plain characters', async () => {
    expect(await names('q=%25')).toEqual([]);
    expect(await names('q=_')).toEqual([]);
  });

  it('finds nothing for words nobody wrote', async () => {
    expect(await names('q=zeppelin')).toEqual([]);
  });

  it('is served by the trigram index for partial words', async () => {
    const plan = await ctx.sql.begin(async (tx) => {
      await tx`SET LOCAL enable_seqscan = off`;
      return tx.unsafe(`EXPLAIN SELECT id FROM goods WHERE search_text LIKE '%headph%'`);
    });
    expect(plan.map((r) => Object.values(r)[0]).join('\n')).toMatch(/goods_search_trgm/);
  });

  it('finds an item by its new words after a patch', async () => {
    const id = await goods({ name: 'Plain Box', pointsPrice: 40, stock: 1 });
    expect(await names('q=origami')).toEqual([]);
    const res = await adminWrite(ctx, admin.token, 'PATCH', `/v1/admin/goods/${id}`, { tags: ['Origami'], description: 'Folded paper' });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().tags).toEqual(['origami']);
    expect(await names('q=origami')).toEqual(['Plain Box']);
    expect(await names('q=folded')).toEqual(['Plain Box']);
  });
});

describe('filters', () => {
  it('filters by tag (any case), category, list price range, and combines them with text', async () => {
    expect(await names('tag=audio')).toEqual(['Bluetooth Speaker', 'Wireless Headphones']);
    expect(await names('tag=AUDIO')).toEqual(['Bluetooth Speaker', 'Wireless Headphones']);
    expect(await names(`category=${home}`)).toEqual(['Coffee Mug', 'Travel Mug']);
    expect(await names('minPoints=150&maxPoints=800&q=e')).toEqual(['Bluetooth Speaker', 'Travel Mug', 'VIP Month', 'Wireless Headphones']);
    expect(await names(`category=${audio}&q=speaker`)).toEqual(['Bluetooth Speaker']);
    expect(await names('minPoints=1000')).toEqual(['Gift Card']);
  });

  it('keeps only items with live stock when inStock is set, following sales as they happen', async () => {
    expect(await names(`category=${home}&inStock=true`)).toEqual(['Travel Mug']);
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 1000);
    expect((await redeem(ctx, m.token, ids['Travel Mug'], { quantity: 3 })).statusCode).toBe(201);
    await settled(ctx, ids['Travel Mug']);
    expect(await names(`category=${home}&inStock=true`)).toEqual([]);
    expect(await names(`category=${home}&inStock=false`)).toEqual(['Coffee Mug', 'Travel Mug']);
    await ctx.app.goods.restock(ids['Travel Mug'], 3, admin.id);
  });

  it('pages inStock results over items without stock', async () => {
    for (let i = 0; i < 6; i++) await goods({ name: `Sold out ${i}`, tags: ['soldout'], pointsPrice: 10 + i, stock: 0 });
    await goods({ name: 'Last one in stock', tags: ['soldout'], pointsPrice: 5, stock: 1 });
    const { names: found } = await allPages('tag=soldout&inStock=true&limit=1&sort=-price');
    expect(found).toEqual(['Last one in stock']);
  });
});

describe('sorts and cursors', () => {
  const catalog = ['Wireless Headphones', 'Coffee Mug', 'Travel Mug', 'Bluetooth Speaker', 'Gift Card', 'VIP Month'];
  const byPrice = ['Coffee Mug', 'Travel Mug', 'VIP Month', 'Wireless Headphones', 'Bluetooth Speaker', 'Gift Card'];
  const scope = `minPoints=100`;

  it('sorts by list price up and down, page after page', async () => {
    expect(await allPages(`${scope}&sort=price&limit=2`)).toEqual({ names: byPrice, pages: 3 });
    expect((await allPages(`${scope}&sort=-price&limit=4`)).names).toEqual([...byPrice].reverse());
  });

  it('sorts newest first by default', async () => {
    expect((await allPages(`${scope}&limit=5`)).names).toEqual([...catalog].reverse());
    expect((await allPages(`${scope}&sort=new&limit=1`)).names).toEqual([...catalog].reverse());
  });

  it('breaks price ties by id, so a tie never splits or repeats across pages', async () => {
    const scoped = 'tag=tie';
    for (let i = 0; i < 5; i++) await goods({ name: `Tie ${i}`, tags: ['tie'], pointsPrice: 77 });
    expect((await allPages(`${scoped}&sort=price&limit=2`)).names).toEqual(['Tie 0', 'Tie 1', 'Tie 2', 'Tie 3', 'Tie 4']);
    expect((await allPages(`${scoped}&sort=-price&limit=2`)).names).toEqual(['Tie 4', 'Tie 3', 'Tie 2', 'Tie 1', 'Tie 0']);
  });

  it('sorts by redemptions in the last 7 days; older, cancelled and lottery ones do not count', async () => {
    for (let i = 0; i < 3; i++) await pastRedemption(ids['Gift Card'], 1);
    for (let i = 0; i < 2; i++) await pastRedemption(ids['Coffee Mug'], 6);
    await pastRedemption(ids['VIP Month'], 2);
    for (let i = 0; i < 5; i++) await pastRedemption(ids['Bluetooth Speaker'], 8);
    for (let i = 0; i < 5; i++) await pastRedemption(ids['Wireless Headphones'], 1, { status: 'cancelled' });
    for (let i = 0; i < 5; i++) await pastRedemption(ids['Wireless Headphones'], 1, { source: 'lottery' });
    // Travel Mug: the 3 units sold above (persisted by nobody here: no pipeline) do not count
    const { names: popular } = await allPages(`${scope}&sort=popular&limit=2`);
    expect(popular.slice(0, 3)).toEqual(['Gift Card', 'Coffee Mug', 'VIP Month']);
    // the rest have none: newest first
    expect(popular.slice(3)).toEqual(['Bluetooth Speaker', 'Travel Mug', 'Wireless Headphones']);
  });

  it('holds the pages still while the catalog changes between them', async () => {
    const first = await search(`${scope}&sort=price&limit=3`);
    expect(first.items.map((i) => i.name)).toEqual(byPrice.slice(0, 3));
    // a cheaper item and another price change land between the pages
    await goods({ name: 'Cheap newcomer', pointsPrice: 101 });
    const rest = await allPages(`${scope}&sort=price&limit=3`, first.nextCursor);
    expect(rest.names).toEqual(byPrice.slice(3));

    const popFirst = await search(`${scope}&sort=popular&limit=2`);
    expect(popFirst.items.map((i) => i.name)).toEqual(['Gift Card', 'Coffee Mug']);
    // redemptions after the first page was read do not reorder the pages still to come
    for (let i = 0; i < 4; i++) await pastRedemption(ids['Bluetooth Speaker'], 0);
    const popRest = await allPages(`${scope}&sort=popular&limit=2`, popFirst.nextCursor);
    expect(popRest.names).toEqual(['VIP Month', 'Cheap newcomer', 'Bluetooth Speaker', 'Travel Mug', 'Wireless Headphones']);
    // a fresh listing sees them
    expect((await search(`${scope}&sort=popular&limit=1`)).items[0].name).toBe('Bluetooth Speaker');
  });

  it('refuses a cursor made for another sort', async () => {
    const page = await search(`${scope}&sort=price&limit=1`);
    const res = await get(ctx, `/v1/goods?${scope}&sort=popular&cursor=${page.nextCursor}`);
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('VALIDATION_FAILED');
  });
});

describe('hot goods', () => {
  it('answers from Redis: the list the catalog role computed, with live stock, without reading Postgres', async () => {
    const empty = (await get(ctx, '/v1/goods/hot')).json();
    expect(empty).toEqual({ items: [], refreshedAt: null });

    const { connection, writer, gate } = await ctx.roleConnections();
    const task = await startCatalog({
      connection,
      writer,
      gate,
      keys: ctx.keys,
      sql: ctx.sql,
      everyMs: 200,
      lockMs: 2000,
      log: createLogger('silent', 'test'),
    });
    try {
      for (let i = 0; i < 100 && (await ctx.redis.hget(ctx.keys.hotItems(), 'at')) === null; i++) await new Promise((r) => setTimeout(r, 50));
    } finally {
      await task.close();
    }
    const hot = (await get(ctx, '/v1/goods/hot?limit=3')).json();
    expect(hot.refreshedAt).not.toBeNull();
    expect(hot.items.map((i: { name: string; redemptionsLast7Days: number }) => [i.name, i.redemptionsLast7Days])).toEqual([
      ['Bluetooth Speaker', 4],
      ['Gift Card', 3],
      ['Coffee Mug', 2],
    ]);
    expect(hot.items[1].stock).toBe(100);

    // Postgres changes are not seen until the next run; the stock is live
    await ctx.sql`DELETE FROM redemptions WHERE goods_id = ${ids['Gift Card']}`;
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 5000);
    expect((await redeem(ctx, m.token, ids['Gift Card'])).statusCode).toBe(201);
    const again = (await get(ctx, '/v1/goods/hot?limit=3')).json();
    expect(again.items[1]).toMatchObject({ name: 'Gift Card', redemptionsLast7Days: 3, stock: 99 });
    // the next run replaces the list whole
    await refreshHotGoods(ctx.sql, ctx.redis, ctx.keys);
    const names = (await get(ctx, '/v1/goods/hot')).json().items.map((i: { name: string }) => i.name);
    expect(names).not.toContain('Gift Card');
  });
});
