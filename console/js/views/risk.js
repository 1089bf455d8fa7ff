// Risk: recent risk events (GET /v1/admin/risk/events), flagged and frozen members
// (GET /v1/admin/risk/members), a member search (GET /v1/admin/members?q=) and freeze / unfreeze
// (POST /v1/admin/members/:id/freeze | unfreeze, with a reason).
import { api } from '../api.js';
import { badge, flash, h, when } from '../dom.js';

export async function riskView(main) {
  const reason = h('input', { id: 'risk-reason', value: 'Checked from the console', maxlength: 500 });
  const q = h('input', { id: 'member-q', placeholder: 'username or email (2+ characters)', minlength: 2 });
  const found = h('tbody', { id: 'member-rows' });
  const flagged = h('tbody', { id: 'risk-member-rows' });
  const events = h('tbody', { id: 'risk-event-rows' });

  const act = async (m, mode, btn) => {
    btn.disabled = true;
    try {
      const res = await api(`/v1/admin/members/${m.id}/${mode}`, { method: 'POST', body: { reason: reason.value || 'Checked from the console' } });
      const updated = { ...m, riskStatus: res.riskStatus === 'normal' ? 'normal' : 'frozen' };
      btn.closest('tr').replaceWith(memberRow(updated));
      flash(`${m.username} is ${res.riskStatus}.`);
      await loadRisk();
    } catch (err) {
      flash(`Could not ${mode} ${m.username}: ${err.message}`, 'error');
      btn.disabled = false;
    }
  };

  function memberRow(m) {
    const frozen = m.riskStatus === 'frozen';
    const mode = frozen ? 'unfreeze' : 'freeze';
    return h(
      'tr',
      { 'data-member': m.id },
      h('td', {}, m.id),
      h('td', {}, m.username),
      h('td', {}, m.email ?? ''),
      h('td', { class: 'status' }, badge(m.riskStatus)),
      h('td', {}, m.lastRule ?? ''),
      h('td', {}, h('button', { type: 'button', class: frozen ? 'secondary' : 'danger', 'data-action': mode, onclick: (e) => act(m, mode, e.currentTarget) }, frozen ? 'Unfreeze' : 'Freeze')),
    );
  }

  async function loadRisk() {
    const [members, evts] = await Promise.all([api('/v1/admin/risk/members', { query: { limit: 50 } }), api('/v1/admin/risk/events', { query: { limit: 50 } })]);
    flagged.replaceChildren(...members.items.map(memberRow));
    events.replaceChildren(
      ...evts.items.map((e) => h('tr', {}, h('td', {}, when(e.createdAt)), h('td', {}, e.userId), h('td', {}, e.rule), h('td', {}, badge(e.action)), h('td', { class: 'muted' }, JSON.stringify(e.evidence).slice(0, 120)))),
    );
  }

  const search = h(
    'form',
    {
      class: 'inline',
      id: 'member-search',
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const res = await api('/v1/admin/members', { query: { q: q.value.trim(), limit: 20 } });
          found.replaceChildren(...res.items.map(memberRow));
          if (res.items.length === 0) flash('No member starts with that.');
        } catch (err) {
          flash(err.message, 'error');
        }
      },
    },
    h('label', {}, 'Find a member', q),
    h('button', { type: 'submit' }, 'Search'),
  );
  const head = (...cols) => h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, c))));
  main.append(
    h('h1', {}, 'Risk and members'),
    h('div', { class: 'toolbar' }, h('label', {}, 'Reason for freeze / unfreeze', reason)),
    h('section', { class: 'card' }, search, h('table', {}, head('Id', 'Username', 'Email', 'Risk', '', ''), found)),
    h('h2', {}, 'Flagged and frozen members'),
    h('table', {}, head('Id', 'Username', '', 'Risk', 'Last rule', ''), flagged),
    h('h2', {}, 'Risk events'),
    h('table', {}, head('When', 'Member', 'Rule', 'Action', 'Evidence'), events),
  );
  await loadRisk();
}
