// The dashboard: points issued / spent / expired per day, daily active members and the
// redemption rate, from GET /v1/admin/analytics/daily when the server offers it. A server without
// the analytics endpoints gets the charts the order list can give (points spent and redemptions
// per day, from GET /v1/admin/orders), and says so.
import { api, offers } from '../api.js';
import { chart } from '../chart.js';
import { fmt, h } from '../dom.js';

const DAY = 86_400_000;
const ANALYTICS = '/v1/admin/analytics/daily';
const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);

function daysOf(fromMs, toMs) {
  const out = [];
  for (let t = Date.parse(isoDay(fromMs)); t <= toMs; t += DAY) out.push(isoDay(t));
  return out;
}

/** One metric's points over `days` (days the server left out are 0). */
async function metric(name, days) {
  const res = await api(ANALYTICS, { query: { metric: name, from: days[0], to: days.at(-1) } });
  const byDay = new Map(res.points.map((p) => [p.day, p.value]));
  return days.map((d) => ({ x: d, y: byDay.get(d) ?? 0 }));
}

async function fromAnalytics(days) {
  const [issued, spent, expired, dau, rate] = await Promise.all(['points_issued', 'points_spent', 'points_expired', 'dau', 'redemption_rate'].map((m) => metric(m, days)));
  return {
    source: 'analytics',
    charts: [
      { title: 'Points issued, spent and expired per day', series: [{ name: 'issued', points: issued }, { name: 'spent', points: spent }, { name: 'expired', points: expired }] },
      { title: 'Daily active members', series: [{ name: 'DAU', points: dau }], kind: 'bar' },
      { title: 'Redemption rate', series: [{ name: 'redemption rate', points: rate }], format: (v) => `${Math.round(v * 100)}%` },
    ],
  };
}

/** Up to 2,000 orders of the window, newest first: enough for a console glance, not an export. */
async function fromOrders(days) {
  const spent = new Map(days.map((d) => [d, 0]));
  const count = new Map(days.map((d) => [d, 0]));
  let cursor;
  for (let page = 0; page < 20; page++) {
    const res = await api('/v1/admin/orders', { query: { limit: 100, from: `${days[0]}T00:00:00.000Z`, cursor } });
    for (const o of res.items) {
      const d = o.createdAt.slice(0, 10);
      if (!count.has(d) || o.status === 'cancelled' || o.status === 'refunded') continue;
      spent.set(d, spent.get(d) + o.pointsTotal + o.pointsToUse);
      count.set(d, count.get(d) + 1);
    }
    cursor = res.nextCursor;
    if (!cursor) break;
  }
  const pts = (m) => days.map((d) => ({ x: d, y: m.get(d) }));
  return {
    source: 'orders',
    charts: [
      { title: 'Points spent per day (orders and redemptions, not cancelled or refunded)', series: [{ name: 'spent', points: pts(spent) }] },
      { title: 'Orders and redemptions per day', series: [{ name: 'orders', points: pts(count) }], kind: 'bar' },
      { title: 'Points issued and expired, DAU, redemption rate', series: [], empty: 'Needs the analytics endpoints (GET /v1/admin/analytics/daily)' },
    ],
  };
}

export async function dashboardView(main) {
  const days = h('select', { id: 'window' }, [7, 14, 30, 90].map((n) => h('option', { value: n, selected: n === 14 }, `Last ${n} days`)));
  const body = h('div', { id: 'dashboard-charts' });
  const note = h('p', { class: 'muted', id: 'dashboard-source' });
  main.append(h('h1', {}, 'Dashboard'), h('div', { class: 'toolbar' }, h('label', {}, 'Window', days)), note, body);

  const draw = async () => {
    const n = Number(days.value);
    const now = Date.now();
    const window = daysOf(now - (n - 1) * DAY, now);
    const data = (await offers(ANALYTICS)) ? await fromAnalytics(window).catch((err) => (err.status === 404 ? fromOrders(window) : Promise.reject(err))) : await fromOrders(window);
    note.textContent =
      data.source === 'analytics'
        ? `From the analytics rollups, ${window[0]} to ${window.at(-1)} (UTC days).`
        : `This server has no analytics endpoints: charts drawn from the order list (up to 2,000 orders), ${window[0]} to ${window.at(-1)} (UTC days).`;
    body.dataset.source = data.source;
    const totals = data.charts.flatMap((c) => c.series.map((sr) => [sr.name, sr.points.reduce((a, p) => a + p.y, 0)]));
    body.replaceChildren(
      h('div', { class: 'stats' }, totals.filter(([name]) => !/rate|DAU/.test(name)).map(([name, v]) => h('div', { class: 'stat' }, h('div', { class: 'label' }, `${name} (window)`), h('div', { class: 'value' }, fmt(v))))),
      h('div', { class: 'grid' }, data.charts.map((c) => h('section', { class: 'card' }, h('h2', {}, c.title), chart(c.series, { title: c.title, kind: c.kind, format: c.format, empty: c.empty })))),
    );
  };
  days.addEventListener('change', draw);
  await draw();
}
