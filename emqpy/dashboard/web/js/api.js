// The one way the pages call the broker: relative URLs under api/v5 with the login token, and
// errors as EMQX's {code, message}. A 401 on a logged-in session (expired or revoked token)
// ends the session and sends the user to the login page with the reason.
import { reactive } from 'vue';

const BASE = 'api/v5';
const KEY = 'emqpy.session';

function restore() {
  try { return JSON.parse(localStorage.getItem(KEY)) || {}; } catch { return {}; }
}

export const session = reactive({ token: null, username: null, version: null, ...restore() });
let onExpired = () => {};

export function setExpiredHandler(fn) { onExpired = fn; }

export function startSession(username, answer) {
  Object.assign(session, { token: answer.token, username, version: answer.version });
  localStorage.setItem(KEY, JSON.stringify(session));
}

export function endSession() {
  Object.assign(session, { token: null, username: null, version: null });
  localStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  toString() { return `${this.code}: ${this.message}`; }
}

function url(path, query) {
  const u = `${BASE}${path}`;
  if (!query) return u;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== '') params.append(k, v);
  }
  const s = params.toString();
  return s ? `${u}?${s}` : u;
}

// api('GET', '/clients', {query: {page: 1}}) -> parsed JSON (null for 204)
export async function api(method, path, { query, body, raw } = {}) {
  const headers = { Accept: 'application/json' };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(url(path, query), { method, headers, body: payload });
  } catch (e) {
    throw new ApiError(0, 'NETWORK_ERROR', `The broker did not answer: ${e.message}`);
  }
  if (resp.status === 401 && session.token && path !== '/login') {
    const err = await errorOf(resp);
    endSession();
    onExpired(err);
    throw err;
  }
  if (!resp.ok) throw await errorOf(resp);
  if (raw) return resp;
  if (resp.status === 204) return null;
  const text = await resp.text();
  if (!text) return null;
  try { return JSON.parse(text); } catch { return text; }
}

// Saves the answer of GET `path` as a file named `filename` (a trace's zip, a backup).
export async function downloadFile(path, filename, query) {
  const resp = await api('GET', path, { raw: true, query });
  const href = URL.createObjectURL(await resp.blob());
  const a = document.createElement('a');
  a.href = href; a.download = filename; a.click();
  URL.revokeObjectURL(href);
}

async function errorOf(resp) {
  let code = `HTTP_${resp.status}`, message = resp.statusText || 'request failed';
  try {
    const body = await resp.json();
    if (body && body.code) code = body.code;
    if (body && body.message) message = typeof body.message === 'string'
      ? body.message : JSON.stringify(body.message);
  } catch { /* not JSON: keep the status line */ }
  return new ApiError(resp.status, code, message);
}
