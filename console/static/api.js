// The console's only way to the server: relative URLs under /api/v1, so the
// application token travels to this origin and nowhere else (the page's
// Content-Security-Policy forbids connecting anywhere else too).

export const API = '/api/v1';

// APIError carries the API's own words: {"error": {"code", "message"}}.
// status is 0 when no answer came (network down, timeout).
export class APIError extends Error {
  constructor(status, code, message, retryAfter = 0) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
  // retryable tells a failure worth retrying with the same Idempotency-Key:
  // no answer, too many requests, or the server or a dependency unavailable.
  get retryable() {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

// request sends one API call and returns {status, data, headers}, or throws
// an APIError. timeout is in milliseconds.
export async function request(method, path, { body, headers = {}, timeout = 15000 } = {}) {
  const init = { method, headers: { ...headers }, cache: 'no-store', credentials: 'same-origin', signal: AbortSignal.timeout(timeout) };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(API + path, init);
  } catch (e) {
    const why = e.name === 'TimeoutError' ? `no answer within ${timeout / 1000} s` : 'the server could not be reached';
    throw new APIError(0, 'network', `${method} failed: ${why}.`);
  }
  let data = null;
  const text = await res.text().catch(() => '');
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const err = data && data.error;
    const retryAfter = Number(res.headers.get('Retry-After')) || 0;
    throw new APIError(res.status, err?.code ?? `http_${res.status}`,
      err?.message ?? `The server answered ${res.status} ${res.statusText}.`, retryAfter);
  }
  return { status: res.status, data, headers: res.headers };
}

// allows reports whether the server serves method on path: an OPTIONS
// request is answered 405 with the Allow header of the path's routes. The
// console asks before it offers an action a server may not have yet.
export async function allows(method, path) {
  try {
    const res = await fetch(API + path, { method: 'OPTIONS', cache: 'no-store', signal: AbortSignal.timeout(5000) });
    const allow = res.headers.get('Allow') || '';
    return allow.split(',').map((m) => m.trim().toUpperCase()).includes(method);
  } catch {
    return false;
  }
}

export const paths = {
  apps: () => '/applications',
  app: (token) => `/applications/${encodeURIComponent(token)}`,
  chats: (token) => `${paths.app(token)}/chats`,
  chat: (token, n) => `${paths.chats(token)}/${n}`,
  messages: (token, n) => `${paths.chat(token, n)}/messages`,
  message: (token, n, m) => `${paths.messages(token, n)}/${m}`,
  search: (token, n) => `${paths.messages(token, n)}/search`,
  appEvents: (token) => `${API}${paths.app(token)}/events`,
  chatEvents: (token, n) => `${API}${paths.chat(token, n)}/events`,
};

// cursorAfter is the list cursor that starts after number n, as the server
// encodes it (instachat.EncodeCursor: base64url of "n" and the number). The
// console ships in the same binary as the API, and a test checks the two
// encoders agree; it needs the cursor to start a page anywhere, which is how
// it reads a chat from its newest end (see loadNewest in app.js).
export function cursorAfter(n) {
  if (n <= 0) return '';
  return btoa(`n${n}`).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

// newKey returns a fresh Idempotency-Key. crypto.randomUUID exists only in
// secure contexts (https, localhost); elsewhere build the same UUIDv4.
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// timeKey orders API timestamps (RFC 3339 with up to nine fraction digits)
// to the microsecond, which Date.parse alone cannot.
export function timeKey(s) {
  const m = /^(.*?:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(s || '');
  if (!m) return 0;
  return Date.parse(m[1] + m[3]) * 1000 + Number((m[2] || '').padEnd(6, '0').slice(0, 6));
}
