// Goods: the catalog list (GET /v1/goods), create (POST /v1/admin/goods; a hot item's stock is
// split over 2..64 Redis slots, for a flash sale beyond one shard's rate) and switching an item
// on or off sale (PATCH /v1/admin/goods/:id {active}).
import { api } from '../api.js';
import { badge, flash, fmt, h, when } from '../dom.js';

function row(g) {
  const toggle = h('button', { type: 'button', class: g.active ? 'secondary' : '', 'data-action': g.active ? 'deactivate' : 'activate' }, g.active ? 'Take off sale' : 'Put on sale');
  const tr = h(
    'tr',
    { 'data-goods': g.id },
    h('td', {}, g.id),
    h('td', {}, g.name),
    h('td', {}, g.type),
    h('td', { class: 'num' }, fmt(g.pointsPrice)),
    h('td', { class: 'num' }, fmt(g.stock)),
    h('td', { class: 'num hot' }, g.hotBuckets ? fmt(g.hotBuckets) : '—'),
    h('td', {}, badge(g.active ? 'active' : 'inactive')),
    h('td', {}, when(g.createdAt)),
    h('td', {}, toggle),
  );
  toggle.addEventListener('click', async () => {
    toggle.disabled = true;
    try {
      const updated = await api(`/v1/admin/goods/${g.id}`, { method: 'PATCH', body: { active: !g.active } });
      tr.replaceWith(row(updated));
      flash(`${updated.name} is ${updated.active ? 'on sale' : 'off sale'}.`);
    } catch (err) {
      flash(`Could not change #${g.id}: ${err.message}`, 'error');
      toggle.disabled = false;
    }
  });
  return tr;
}

export async function goodsView(main) {
  const tbody = h('tbody', { id: 'goods-rows' });
  const name = h('input', { name: 'name', required: true, maxlength: 200, placeholder: 'Name' });
  const type = h('select', { name: 'type' }, ['physical', 'virtual', 'coupon', 'vip'].map((t) => h('option', { value: t }, t)));
  const price = h('input', { name: 'pointsPrice', type: 'number', min: 1, required: true, value: 100 });
  const stock = h('input', { name: 'stock', type: 'number', min: 0, required: true, value: 10 });
  // 0: an ordinary item; 2..64: hot, its stock split over that many bucket slots
  const hot = h('input', { name: 'hotBuckets', type: 'number', min: 0, max: 64, value: 0, title: '0, or 2 to 64 bucket slots' });
  const create = h(
    'form',
    {
      class: 'inline',
      id: 'goods-create',
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const body = { name: name.value, type: type.value, pointsPrice: Number(price.value), stock: Number(stock.value) };
          if (type.value === 'coupon') body.couponValidDays = 30;
          if (type.value === 'vip') body.vipDays = 30;
          if (Number(hot.value) !== 0) body.hotBuckets = Number(hot.value);
          const created = await api('/v1/admin/goods', { method: 'POST', body });
          tbody.prepend(row(created));
          flash(`Created #${created.id} ${created.name}.`);
          name.value = '';
          hot.value = 0;
        } catch (err) {
          flash(`Could not create: ${err.message}`, 'error');
        }
      },
    },
    h('label', {}, 'Name', name),
    h('label', {}, 'Type', type),
    h('label', {}, 'Points', price),
    h('label', {}, 'Stock', stock),
    h('label', {}, 'Hot buckets', hot),
    h('button', { type: 'submit' }, 'Create'),
  );
  main.append(
    h('h1', {}, 'Goods'),
    h('section', { class: 'card' }, h('h2', {}, 'New item'), create),
    h('p', { class: 'muted' }, 'The catalog as members see it, newest first (items taken off sale here stay in the list until reload).'),
    h('table', {}, h('thead', {}, h('tr', {}, ['Id', 'Name', 'Type', 'Points', 'Stock', 'Hot buckets', 'State', 'Created', ''].map((t) => h('th', {}, t)))), tbody),
  );
  const page = await api('/v1/goods', { query: { limit: 100, sort: 'new' }, auth: false });
  tbody.replaceChildren(...page.items.map(row));
}
