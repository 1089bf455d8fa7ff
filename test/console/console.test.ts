/**
 * The admin console in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core;
 * no browser download) against the real app on a loopback port: sign in through the form, the
 * dashboard's SVG charts drawn with data, the live panel's numbers moving during a scripted flash
 * sale, freezing and unfreezing a member from the list, the queue dashboard opened by the login's
 * cookie, and not one console error or page error on the way. Screenshots land in
 * test/console/screenshots/ (ignored by git).
 */
import { mkdirSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRollup } from '../../src/analytics/rollup.ts';
import { createTestContext, type Pipeline, type TestContext } from '../support/context.ts';

const SHOTS = new URL('./screenshots/', import.meta.url).pathname;
const MEMBERS = 120;
const STOCK = 80;

let ctx: TestContext;
let base: string;
let browser: Browser;
let page: Page;
let pipeline: Pipeline;
let adminEmail: string;
const problems: string[] = [];
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

function post(url: string, headers: Record<string, string>, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const redeem = (m: { id: number; token: string }, goodsId: number, key: string) =>
  post(`${base}/v1/redemptions`, { authorization: `Bearer ${m.token}`, 'idempotency-key': key }, JSON.stringify({ goodsId, quantity: 1 }));

const shot = (name: string) => page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });
const text = async (selector: string) => (await page.textContent(selector))?.trim() ?? '';
const num = async (selector: string) => Number((await text(selector)).replace(/,/g, ''));

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  ctx = await createTestContext();
  base = await ctx.app.listen({ host: '127.0.0.1', port: 0 });
  pipeline = await ctx.startPipeline();
  const admin = await ctx.admin();
  [{ email: adminEmail }] = await ctx.sql<Array<{ email: string }>>`SELECT email FROM users WHERE id = ${admin.id}`;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'], headless: true });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(15_000);
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`console ${msg.type()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} ${req.failure()?.errorText}`));
});

afterAll(async () => {
  await browser?.close();
  agent.destroy();
  await pipeline?.stop();
  await ctx?.close();
});

describe('admin console', () => {
  it('refuses a member at sign-in and lets the admin in', async () => {
    const [member] = await ctx.createMembers(1);
    const [{ email }] = await ctx.sql<Array<{ email: string }>>`SELECT email FROM users WHERE id = ${member.id}`;
    await page.goto(`${base}/console`);
    await page.fill('#login-form input[name=email]', email);
    await page.fill('#login-form input[name=password]', 'member-password');
    await page.click('#login-form button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#login-error')?.textContent?.includes('not an administrator'));

    await page.fill('#login-form input[name=email]', adminEmail);
    await page.fill('#login-form input[name=password]', 'member-password');
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#dashboard-charts figure');
    expect(await page.evaluate(() => sessionStorage.getItem('pm.console.token'))).toMatch(/^ey/);
    // the cookie is HttpOnly: the page's script cannot read it
    expect(await page.evaluate(() => document.cookie)).toBe('');
  });

  it('draws the dashboard charts as SVG paths with data', async () => {
    // a few persisted redemptions for the order-list charts
    const members = await ctx.createMembers(5);
    await Promise.all(members.map((m) => ctx.grant(m.id, 1000)));
    const goods = await ctx.createGoods({ name: 'Dashboard mug', pointsPrice: 50, stock: 100 });
    for (const m of members) expect(await redeem(m, goods.id, `dash-${m.id}`)).toBe(201);
    await pipeline.drain();
    // what the analytics role does on its schedule: today's rollup holds the grants and redemptions
    await runRollup(ctx.sql, { timeZone: ctx.env.BUSINESS_TIMEZONE, recomputeDays: 2 });

    await page.goto(`${base}/console/#/goods`);
    await page.goto(`${base}/console/#/dashboard`);
    // attached, not visible: a series of zeros is a flat line with an empty box
    await page.waitForSelector('#dashboard-charts path.series[data-points]', { state: 'attached' });
    const source = await page.getAttribute('#dashboard-charts', 'data-source');
    const series = await page.$$eval('#dashboard-charts path.series, #dashboard-charts path.bars', (ps) =>
      ps.map((p) => ({ name: p.getAttribute('data-series'), points: Number(p.getAttribute('data-points')), total: Number(p.getAttribute('data-total')), d: p.getAttribute('d') ?? '' })),
    );
    expect(series.length).toBeGreaterThanOrEqual(2);
    for (const sr of series) {
      expect(sr.points, sr.name ?? '').toBe(14);
      expect(sr.d.length).toBeGreaterThan(20);
    }
    if (source === 'orders') {
      // no analytics endpoints on this server: spent and orders per day come from the order list
      expect(series.find((sr) => sr.name === 'spent')?.total).toBe(5 * 50);
      expect(series.find((sr) => sr.name === 'orders')?.total).toBe(5);
    } else {
      expect(source).toBe('analytics');
      expect(series.map((sr) => sr.name)).toEqual(expect.arrayContaining(['issued', 'spent', 'expired', 'DAU', 'redemption rate']));
      expect(series.find((sr) => sr.name === 'spent')?.total).toBe(5 * 50);
      expect(series.find((sr) => sr.name === 'issued')?.total).toBeGreaterThanOrEqual(5 * 1000);
    }
    await shot('dashboard');
  });

  it('shows the live panel moving during a scripted flash sale', async () => {
    const members = await ctx.createMembers(MEMBERS);
    await Promise.all(members.map((m) => ctx.grant(m.id, 1000)));
    const goods = await ctx.createGoods({ name: 'Flash headphones', pointsPrice: 100, stock: STOCK, perUserLimit: 1 });

    await page.goto(`${base}/console/#/live`);
    await page.waitForSelector(`#live-goods option[value="${goods.id}"]`, { state: 'attached' });
    await page.selectOption('#live-goods', String(goods.id));
    await page.waitForFunction((stock) => document.querySelector('#live-stock')?.textContent === String(stock), STOCK);
    const updatesBefore = Number(await page.getAttribute('#live-status', 'data-updates'));

    // the sale: waves of concurrent redemptions over ~3 s, each member twice (the second is refused)
    const statuses: number[] = [];
    const waves = 6;
    const per = Math.ceil(MEMBERS / waves);
    for (let w = 0; w < waves; w++) {
      const wave = members.slice(w * per, (w + 1) * per);
      statuses.push(...(await Promise.all(wave.flatMap((m) => [redeem(m, goods.id, `flash-${m.id}-1`), redeem(m, goods.id, `flash-${m.id}-2`)]))));
      await new Promise((r) => setTimeout(r, 500));
    }
    const accepted = statuses.filter((s) => s === 201).length;
    expect(accepted).toBe(STOCK);
    expect(statuses.filter((s) => s === 409).length).toBe(2 * MEMBERS - STOCK);

    await page.waitForFunction(() => document.querySelector('#live-stock')?.textContent === '0');
    await page.waitForFunction(() => Number(document.querySelector('#live-accepted-10')?.textContent?.replace(/,/g, '')) > 0);
    expect(await num('#live-rejected-10')).toBeGreaterThan(0);
    expect(Number(await page.getAttribute('#live-status', 'data-updates'))).toBeGreaterThan(updatesBefore + 1);
    expect(await page.$$eval('#live-rates path.series', (ps) => ps.map((p) => p.getAttribute('data-series')))).toEqual(['accepted', 'rejected']);
    expect(await page.$$eval('#live-leaderboard tr', (rows) => rows.length)).toBeGreaterThan(0);
    await shot('live-flash-sale');

    // the pulse endpoint agrees with what the clients saw, once the counts are flushed
    await new Promise((r) => setTimeout(r, 1200));
    const pulse = await ctx.app.inject({ url: `/v1/admin/goods/${goods.id}/pulse?seconds=30`, headers: { authorization: `Bearer ${await page.evaluate(() => sessionStorage.getItem('pm.console.token'))}` } });
    const seconds = (pulse.json() as { seconds: Array<{ accepted: number; rejected: number }> }).seconds;
    expect(seconds.reduce((a, s) => a + s.accepted, 0)).toBe(STOCK);
    expect(seconds.reduce((a, s) => a + s.rejected, 0)).toBe(2 * MEMBERS - STOCK);
    await pipeline.drain();
  });

  it('freezes and unfreezes a member from the list', async () => {
    const [target] = await ctx.createMembers(1);
    const [{ username }] = await ctx.sql<Array<{ username: string }>>`SELECT username FROM users WHERE id = ${target.id}`;
    await page.goto(`${base}/console/#/risk`);
    await page.fill('#member-q', username);
    await page.click('#member-search button[type=submit]');
    const row = `#member-rows tr[data-member="${target.id}"]`;
    await page.click(`${row} button[data-action=freeze]`);
    await page.waitForSelector(`${row} button[data-action=unfreeze]`);
    expect(await text(`${row} td.status`)).toBe('frozen');
    const [{ risk_status: frozen }] = await ctx.sql<Array<{ risk_status: string }>>`SELECT risk_status FROM users WHERE id = ${target.id}`;
    expect(frozen).toBe('frozen');
    await page.waitForSelector(`#risk-member-rows tr[data-member="${target.id}"]`);
    await shot('risk-frozen');

    await page.click(`${row} button[data-action=unfreeze]`);
    await page.waitForSelector(`${row} button[data-action=freeze]`);
    expect(await text(`${row} td.status`)).toBe('normal');
    const [{ risk_status: after }] = await ctx.sql<Array<{ risk_status: string }>>`SELECT risk_status FROM users WHERE id = ${target.id}`;
    expect(after).toBe('normal');
  });

  it('lists goods, orders and experiments', async () => {
    await page.goto(`${base}/console/#/goods`);
    await page.waitForSelector('#goods-rows tr');
    // a hot item made from the form: its stock split over 4 bucket slots
    await page.fill('#goods-create input[name=name]', 'Console hot item');
    await page.fill('#goods-create input[name=stock]', '400');
    await page.fill('#goods-create input[name=hotBuckets]', '4');
    await page.click('#goods-create button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#flash')?.textContent?.includes('Console hot item'));
    const [made] = await ctx.sql<Array<{ id: string; hot_buckets: number; total_stock: string }>>`
      SELECT id, hot_buckets, total_stock FROM goods WHERE name = 'Console hot item'`;
    expect([made.hot_buckets, Number(made.total_stock)]).toEqual([4, 400]);
    expect(await text(`#goods-rows tr[data-goods="${made.id}"] td.hot`)).toBe('4');
    expect(await page.inputValue('#goods-create input[name=hotBuckets]')).toBe('0');
    const first = await page.getAttribute('#goods-rows tr', 'data-goods');
    expect(first).toBe(String(made.id));
    await page.click(`#goods-rows tr[data-goods="${first}"] button[data-action=deactivate]`);
    await page.waitForSelector(`#goods-rows tr[data-goods="${first}"] button[data-action=activate]`);
    await page.click(`#goods-rows tr[data-goods="${first}"] button[data-action=activate]`);
    await page.waitForSelector(`#goods-rows tr[data-goods="${first}"] button[data-action=deactivate]`);
    await shot('goods');
    await page.goto(`${base}/console/#/orders`);
    await page.waitForSelector('#orders-rows tr');
    // the first page of 50, newest first: the flash sale's redemptions
    expect(await page.$$eval('#orders-rows tr', (rows) => rows.length)).toBe(50);
    await shot('orders');
    const token = await page.evaluate(() => sessionStorage.getItem('pm.console.token'));
    const created = await ctx.app.inject({
      method: 'POST',
      url: '/v1/admin/experiments',
      headers: { authorization: `Bearer ${token}`, 'idempotency-key': 'console-test-experiment' },
      payload: { key: 'checkout-copy', conversionEvent: 'redeemed', variants: [{ name: 'a', weight: 1, payload: {} }, { name: 'b', weight: 1, payload: {} }] },
    });
    expect(created.statusCode, created.body).toBe(201);
    await page.goto(`${base}/console/#/experiments`);
    const row = '#experiment-rows tr[data-experiment="checkout-copy"]';
    await page.click(`${row} button[data-action=start]`);
    await page.waitForSelector(`${row} button[data-action=stop]`);
    await page.click(`${row} button[data-action=stop]`);
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent?.includes('stopped'), row);
    await shot('experiments');
  });

  it('opens the queue dashboard with the cookie the sign-in set', async () => {
    await page.goto(`${base}/admin/queues`);
    await page.waitForSelector('text=persist', { timeout: 20_000 });
    await page.waitForSelector('text=task-reconcile');
    await shot('queues');
    const anonymous = await browser.newPage();
    await anonymous.goto(`${base}/admin/queues`);
    expect(new URL(anonymous.url()).pathname).toBe('/console/');
    await anonymous.close();
  });

  it('met no console error, page error or failed request on the way', () => {
    expect(problems).toEqual([]);
  });
});
