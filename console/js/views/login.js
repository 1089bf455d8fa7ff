// Admin sign-in: POST /v1/auth/login, then POST /v1/auth/console-session so the queue dashboard
// (/admin/queues) opens in this browser too. Members are turned away here as the API would.
import { api, session } from '../api.js';
import { h } from '../dom.js';

/** Only the queue dashboard may be a place to return to after signing in. */
function nextPlace() {
  const next = new URLSearchParams(location.search).get('next');
  return next && /^\/admin\/queues(\/|$)/.test(next) ? next : null;
}

export function loginView(main) {
  const error = h('p', { class: 'muted', id: 'login-error' });
  const email = h('input', { type: 'email', name: 'email', required: true, autocomplete: 'username' });
  const password = h('input', { type: 'password', name: 'password', required: true, autocomplete: 'current-password' });
  const submit = h('button', { type: 'submit' }, 'Sign in');
  const form = h(
    'form',
    {
      id: 'login-form',
      onsubmit: async (e) => {
        e.preventDefault();
        submit.disabled = true;
        error.textContent = '';
        try {
          const res = await api('/v1/auth/login', { method: 'POST', body: { email: email.value, password: password.value }, auth: false });
          if (res.user.role !== 'admin') {
            error.textContent = 'This account is not an administrator.';
            return;
          }
          session.save(res.accessToken, res.user);
          await api('/v1/auth/console-session', { method: 'POST' });
          const next = nextPlace();
          if (next) location.assign(next);
          else location.hash = '#/dashboard';
        } catch (err) {
          error.textContent = err.status === 401 ? 'Wrong email or password.' : err.message;
        } finally {
          submit.disabled = false;
        }
      },
    },
    h('label', {}, 'Email', email),
    h('label', {}, 'Password', password),
    submit,
    error,
  );
  main.append(h('section', { class: 'card login' }, h('h1', {}, 'Console sign-in'), form));
}
