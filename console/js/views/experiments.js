// Experiments (GET /v1/admin/experiments): start a draft, stop a running one
// (PATCH /v1/admin/experiments/:key {status}); results per variant on demand.
import { api } from '../api.js';
import { badge, flash, h, when } from '../dom.js';

export async function experimentsView(main) {
  const tbody = h('tbody', { id: 'experiment-rows' });
  const results = h('div', { id: 'experiment-results' });

  const setStatus = async (x, status, btn) => {
    btn.disabled = true;
    try {
      const updated = await api(`/v1/admin/experiments/${encodeURIComponent(x.key)}`, { method: 'PATCH', body: { status } });
      btn.closest('tr').replaceWith(row(updated));
      flash(`${updated.key} is ${updated.status}.`);
    } catch (err) {
      flash(`Could not change ${x.key}: ${err.message}`, 'error');
      btn.disabled = false;
    }
  };

  const showResults = async (x) => {
    try {
      const r = await api(`/v1/admin/experiments/${encodeURIComponent(x.key)}/results`);
      results.replaceChildren(h('section', { class: 'card' }, h('h2', {}, `Results of ${x.key}`), h('pre', {}, JSON.stringify(r, null, 2))));
    } catch (err) {
      flash(err.message, 'error');
    }
  };

  function row(x) {
    const actions = [h('button', { type: 'button', class: 'secondary', onclick: () => showResults(x) }, 'Results')];
    if (x.status === 'draft') actions.push(h('button', { type: 'button', 'data-action': 'start', onclick: (e) => setStatus(x, 'running', e.currentTarget) }, 'Start'));
    if (x.status === 'running') actions.push(h('button', { type: 'button', class: 'danger', 'data-action': 'stop', onclick: (e) => setStatus(x, 'stopped', e.currentTarget) }, 'Stop'));
    return h(
      'tr',
      { 'data-experiment': x.key },
      h('td', {}, x.key),
      h('td', {}, x.description),
      h('td', {}, x.variants.map((v) => `${v.name} (${v.weight})`).join(', ')),
      h('td', {}, x.conversionEvent),
      h('td', {}, badge(x.status)),
      h('td', {}, when(x.updatedAt)),
      h('td', {}, actions),
    );
  }

  main.append(
    h('h1', {}, 'Experiments'),
    h('table', {}, h('thead', {}, h('tr', {}, ['Key', 'Description', 'Variants', 'Conversion', 'Status', 'Updated', ''].map((t) => h('th', {}, t)))), tbody),
    results,
  );
  const list = await api('/v1/admin/experiments');
  tbody.replaceChildren(...list.items.map(row));
  if (list.items.length === 0) tbody.append(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No experiments yet (create them through POST /v1/admin/experiments).')));
}
