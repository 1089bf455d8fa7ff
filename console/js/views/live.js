// The live flash-sale panel for one goods item, refreshed every second: stock (GET /v1/goods/:id),
// redemptions accepted and refused per second (GET /v1/admin/goods/:id/pulse), the persistence
// backlog (GET /health/ready) and the top of today's leaderboard (GET /v1/leaderboards/daily).
import { api } from '../api.js';
import { chart } from '../chart.js';
import { fmt, h } from '../dom.js';

const REFRESH_MS = 1000;

const stat = (id, label) => h('div', { class: 'stat' }, h('div', { class: 'label' }, label), h('div', { class: 'value', id }, '–'));

export async function liveView(main) {
  const picker = h('select', { id: 'live-goods' }, h('option', { value: '' }, 'Choose an item…'));
  const byId = h('input', { id: 'live-goods-id', type: 'number', min: 1, placeholder: 'or an id' });
  const status = h('p', { class: 'muted', id: 'live-status' }, 'Pick an item to watch.');
  const stats = h(
    'div',
    { class: 'stats' },
    stat('live-stock', 'Stock'),
    stat('live-accepted', 'Accepted / s'),
    stat('live-rejected', 'Rejected / s'),
    stat('live-accepted-10', 'Accepted, last 10 s'),
    stat('live-rejected-10', 'Rejected, last 10 s'),
    stat('live-backlog', 'Persistence backlog'),
  );
  const rates = h('section', { class: 'card', id: 'live-rates' }, h('h2', {}, 'Redemptions per second'));
  const board = h('tbody', { id: 'live-leaderboard' });
  main.append(
    h('h1', {}, 'Live flash sale'),
    h('div', { class: 'toolbar' }, h('label', {}, 'Goods item', picker), h('label', {}, 'Goods id', byId)),
    status,
    stats,
    h(
      'div',
      { class: 'grid' },
      rates,
      h('section', { class: 'card' }, h('h2', {}, "Today's leaderboard"), h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'Member'), h('th', { class: 'num' }, 'Points'))), board)),
    ),
  );

  const goods = await api('/v1/goods', { query: { limit: 100, sort: 'new' }, auth: false });
  for (const g of goods.items) picker.append(h('option', { value: g.id }, `#${g.id} ${g.name}`));

  let goodsId = null;
  let timer = null;
  let stopped = false;
  const set = (id, v) => (document.getElementById(id).textContent = fmt(v));

  const tick = async () => {
    if (stopped || goodsId === null) return;
    const id = goodsId;
    try {
      const [item, pulse, ready, top] = await Promise.all([
        api(`/v1/goods/${id}`, { auth: false }),
        api(`/v1/admin/goods/${id}/pulse`, { query: { seconds: 10 } }),
        api('/health/ready', { auth: false, okStatuses: [503] }),
        api('/v1/leaderboards/daily', { query: { limit: 5 }, auth: false }),
      ]);
      if (stopped || id !== goodsId) return;
      const last = pulse.seconds.at(-1) ?? { accepted: 0, rejected: 0 };
      set('live-stock', item.stock);
      set('live-accepted', last.accepted);
      set('live-rejected', last.rejected);
      set('live-accepted-10', pulse.seconds.reduce((a, p) => a + p.accepted, 0));
      set('live-rejected-10', pulse.seconds.reduce((a, p) => a + p.rejected, 0));
      set('live-backlog', ready.backlog.outbox + ready.backlog.queued);
            rates.replaceChildren(
        h('h2', {}, 'Redemptions per second'),
        chart(
          [
            { name: 'accepted', points: pulse.seconds.map((p) => ({ x: p.at.slice(11, 19), y: p.accepted })) },
            { name: 'rejected', points: pulse.seconds.map((p) => ({ x: p.at.slice(11, 19), y: p.rejected })) },
          ],
          { title: 'Redemptions per second', label: (x) => x },
        ),
      );
      board.replaceChildren(...top.items.map((r) => h('tr', {}, h('td', {}, r.rank), h('td', {}, r.username), h('td', { class: 'num' }, fmt(r.points)))));
      status.textContent = `${item.name} (#${item.id}) · ${item.active ? 'on sale' : 'inactive'} · updated ${new Date().toLocaleTimeString('en-GB')}`;
      status.dataset.updates = String(Number(status.dataset.updates ?? 0) + 1);
    } catch (err) {
      status.textContent = `Could not refresh: ${err.message}`;
    } finally {
      if (!stopped && id === goodsId) timer = setTimeout(tick, REFRESH_MS);
    }
  };

  const watch = (id) => {
    clearTimeout(timer);
    goodsId = Number.isSafeInteger(id) && id > 0 ? id : null;
    status.dataset.updates = '0';
    if (goodsId !== null) tick();
  };
  picker.addEventListener('change', () => watch(Number(picker.value)));
  byId.addEventListener('change', () => watch(Number(byId.value)));
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
