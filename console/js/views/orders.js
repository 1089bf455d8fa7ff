// Orders and redemptions (GET /v1/admin/orders) with ship (POST …/ship, paid orders) and refund
// (POST …/refund, paid, shipped or completed ones).
import { api } from '../api.js';
import { badge, flash, fmt, h, when } from '../dom.js';

const STATUSES = ['', 'pending_payment', 'paid', 'shipped', 'completed', 'cancelled', 'refunded'];

export async function ordersView(main) {
  const status = h('select', { id: 'orders-status' }, STATUSES.map((s) => h('option', { value: s }, s || 'any status')));
  const carrier = h('input', { id: 'ship-carrier', placeholder: 'Carrier', value: 'SF Express', maxlength: 64 });
  const reason = h('input', { id: 'orders-reason', placeholder: 'Reason for a refund', value: 'Refunded from the console', maxlength: 500 });
  const tbody = h('tbody', { id: 'orders-rows' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'More');
  let cursor = null;

  const act = async (o, action, btn) => {
    btn.disabled = true;
    try {
      const body =
        action === 'ship'
          ? { carrier: carrier.value || 'carrier', trackingNo: `TN${Date.now().toString(36).toUpperCase()}` }
          : { reason: reason.value || 'Refunded from the console' };
      const updated = await api(`/v1/admin/orders/${o.id}/${action}`, { method: 'POST', body });
      btn.closest('tr').replaceWith(row(updated));
      flash(`${updated.orderNo} is ${updated.status}.`);
    } catch (err) {
      flash(`Could not ${action} ${o.orderNo}: ${err.message}`, 'error');
      btn.disabled = false;
    }
  };

  function row(o) {
    const actions = [];
    if (o.status === 'paid') actions.push(h('button', { type: 'button', 'data-action': 'ship', onclick: (e) => act(o, 'ship', e.currentTarget) }, 'Ship'));
    if (['paid', 'shipped', 'completed'].includes(o.status)) {
      actions.push(h('button', { type: 'button', class: 'danger', 'data-action': 'refund', onclick: (e) => act(o, 'refund', e.currentTarget) }, 'Refund'));
    }
    const items = o.items.map((i) => `#${i.goodsId}×${i.quantity}`).join(', ');
    return h(
      'tr',
      { 'data-order': o.id },
      h('td', {}, o.orderNo),
      h('td', {}, o.source),
      h('td', {}, items),
      h('td', { class: 'num' }, fmt(o.pointsTotal + o.pointsToUse)),
      h('td', { class: 'num' }, fmt(o.cashTotal)),
      h('td', {}, badge(o.status)),
      h('td', {}, when(o.createdAt)),
      h('td', {}, actions),
    );
  }

  const load = async (append) => {
    const page = await api('/v1/admin/orders', { query: { limit: 50, status: status.value, cursor: append ? cursor : undefined } });
    cursor = page.nextCursor;
    more.hidden = !cursor;
    if (append) tbody.append(...page.items.map(row));
    else tbody.replaceChildren(...page.items.map(row));
  };
  status.addEventListener('change', () => load(false).catch((err) => flash(err.message, 'error')));
  more.addEventListener('click', () => load(true).catch((err) => flash(err.message, 'error')));
  main.append(
    h('h1', {}, 'Orders and redemptions'),
    h('div', { class: 'toolbar' }, h('label', {}, 'Status', status), h('label', {}, 'Ship with', carrier), h('label', {}, 'Refund reason', reason)),
    h('table', {}, h('thead', {}, h('tr', {}, ['Number', 'Kind', 'Items', 'Points', 'Cash', 'Status', 'Created', ''].map((t) => h('th', {}, t)))), tbody),
    more,
  );
  await load(false);
}
