// The console is a client of the public REST API: every call goes to /v1/… (or /health/…) with
// the admin's token from sessionStorage; every write carries a fresh Idempotency-Key per click.
const TOKEN = 'pm.console.token';
const USER = 'pm.console.user';

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.code ?? 'HTTP_' + status;
    this.body = body;
  }
}

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN);
  },
  get user() {
    const raw = sessionStorage.getItem(USER);
    return raw ? JSON.parse(raw) : null;
  },
  save(token, user) {
    sessionStorage.setItem(TOKEN, token);
    sessionStorage.setItem(USER, JSON.stringify(user));
  },
  clear() {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(USER);
  },
};

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * One API call. `auth: false` sends no token (public reads answered the same for everyone);
 * `okStatuses` lists non-2xx statuses whose body is an answer, not a failure (/health/ready's 503).
 */
export async function api(path, { method = 'GET', body, query, auth = true, okStatuses = [] } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== '' && v !== null) url.searchParams.set(k, String(v));
  const headers = { accept: 'application/json' };
  if (auth && session.token) headers.authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (WRITES.has(method) && path.startsWith('/v1/admin/')) headers['idempotency-key'] = `console-${crypto.randomUUID()}`;
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok && !okStatuses.includes(res.status)) {
    if (res.status === 401 && auth) {
      session.clear();
      location.hash = '#/login';
    }
    throw new ApiError(res.status, data);
  }
  return data;
}

/** Which operations the server offers (from its OpenAPI document), fetched once per page load. */
let operations;
export async function offers(path) {
  operations ??= fetch('/docs/json', { headers: { accept: 'application/json' } })
    .then((r) => (r.ok ? r.json() : { paths: {} }))
    .then((doc) => new Set(Object.keys(doc.paths ?? {})))
    .catch(() => new Set());
  return (await operations).has(path);
}
