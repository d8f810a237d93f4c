// REST client and URL helpers. Every URL is relative to the token root, which is derived from
// this module's own URL (static/js/api.js → ../../), so the UI works under any sub-path.

export const ROOT = new URL('../../', import.meta.url);

export function rootUrl(path = '') {
  return new URL(path, ROOT).toString();
}

export function wsUrl(params = {}) {
  const url = new URL('ws', ROOT);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(key, value);
  }
  return url.toString();
}

export class ApiError extends Error {
  constructor(status, body) {
    const retry = body && body.retryAfter;
    const text = status === 429
      ? `Too many requests: try again in ${retry || 'a few'} s`
      : (body && body.message) || `Request failed (${status || 'network'})`;
    super(text);
    this.status = status;
    this.body = body;
    this.retryAfter = retry;
  }
}

export async function api(method, path, body) {
  const init = { method, headers: {}, cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(rootUrl('api/' + path), init);
  } catch (err) {
    throw new ApiError(0, { message: 'You are offline or the server is unreachable' });
  }
  let data = null;
  try { data = await response.json(); } catch (err) { data = null; }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body);
export const patch = (path, body) => api('PATCH', path, body);
export const put = (path, body) => api('PUT', path, body);
export const del = (path) => api('DELETE', path);

// Small localStorage helpers that never throw (private mode, quota).
export function load(key, fallback) {
  try {
    const raw = localStorage.getItem('maestro.' + key);
    return raw === null ? fallback : JSON.parse(raw);
  } catch (err) {
    return fallback;
  }
}

export function save(key, value) {
  try { localStorage.setItem('maestro.' + key, JSON.stringify(value)); } catch (err) { /* full */ }
}
