// The console's shell: hash routes, the nav, sign-out. Each view renders into <main> and may
// return a stop function (the live panel's timer), called when the route changes.
import { api, session } from './api.js';
import { flash } from './dom.js';
import { loginView } from './views/login.js';
import { dashboardView } from './views/dashboard.js';
import { liveView } from './views/live.js';
import { goodsView } from './views/goods.js';
import { ordersView } from './views/orders.js';
import { riskView } from './views/risk.js';
import { experimentsView } from './views/experiments.js';

const VIEWS = {
  '#/dashboard': dashboardView,
  '#/live': liveView,
  '#/goods': goodsView,
  '#/orders': ordersView,
  '#/risk': riskView,
  '#/experiments': experimentsView,
};

let stopCurrent = null;

async function route() {
  if (stopCurrent) stopCurrent();
  stopCurrent = null;
  const main = document.getElementById('view');
  const nav = document.getElementById('nav');
  const [hash] = location.hash.split('?');
  main.replaceChildren();
  if (!session.token || hash === '#/login') {
    nav.hidden = true;
    loginView(main);
    return;
  }
  nav.hidden = false;
  const view = VIEWS[hash] ?? dashboardView;
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('current', a.getAttribute('href') === (VIEWS[hash] ? hash : '#/dashboard'));
  try {
    stopCurrent = (await view(main)) ?? null;
  } catch (err) {
    flash(`Could not load this page: ${err.message}`, 'error');
  }
}

document.getElementById('logout').addEventListener('click', async () => {
  await api('/v1/auth/console-session', { method: 'DELETE', auth: false }).catch(() => {});
  session.clear();
  location.hash = '#/login';
});

window.addEventListener('hashchange', route);
route();
