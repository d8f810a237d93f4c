// The app state: one plain object, changed through the helpers below; views re-render on
// `changed()` (batched to one animation frame).

import { load, save } from './api.js';

export const state = {
  sessions: new Map(load('sessions', []).map((s) => [s.id, s])), // last known, until init
  theme: null,
  themes: [],
  commands: [],               // the config file's own commands (GET commands)
  agents: new Map(),          // agent id → what it can be told: modes, model (GET agents)
  approvals: new Map(),       // session id → its open approvals, oldest first
  approvalNotes: new Map(),   // session id → why its approval went away without us
  conn: { status: 'connecting', attempt: 0, maxAttempts: 10, retryAt: 0, everConnected: false },
  queue: load('queue', []),   // offline queue of commands, oldest first
  logs: new Map(),            // logKey → { entries: [], ids: Set, hasMore, loaded, loading }
  toasts: [],
  route: { view: 'dashboard' },
  sheet: null,                // the open bottom sheet: {kind, ...}
  notify: load('notify', false),
  presence: null,             // {sessionId, visible}: what the server last confirmed this page shows
  role: null,                 // 'owner' or 'viewer' (a view-only token), from GET whoami
};

/** A view-only token: the UI shows no control that would act (the server refuses them). */
export const isViewer = () => state.role === 'viewer';

const listeners = new Set();
let scheduled = false;

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function changed() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    for (const fn of listeners) fn();
  });
}

export const QUEUE_MAX = 50;

export function saveQueue() {
  save('queue', state.queue);
  changed();
}

let toastId = 0;
const toastTimers = new Map(); // toast id → its removal timer

/** Show a message for `ms`. The same message again while it shows is one toast with a count
 * (a burst of 429s is one line, not a stack covering the screen), shown `ms` from the last. */
export function toast(message, kind = 'info', ms = 4000) {
  const same = state.toasts.find((t) => t.message === message && t.kind === kind);
  const id = same ? same.id : ++toastId;
  state.toasts = same
    ? state.toasts.map((t) => (t.id === id ? { ...t, count: t.count + 1 } : t))
    : [...state.toasts, { id, message, kind, count: 1 }];
  changed();
  clearTimeout(toastTimers.get(id));
  toastTimers.set(id, setTimeout(() => {
    toastTimers.delete(id);
    state.toasts = state.toasts.filter((t) => t.id !== id);
    changed();
  }, ms));
}

// ---- logs --------------------------------------------------------------------------------

export function logKey(sessionId, tabId) {
  return tabId ? `${sessionId}|ai|${tabId}` : `${sessionId}|shell`;
}

export function getLog(key) {
  let log = state.logs.get(key);
  if (!log) {
    log = { entries: [], ids: new Set(), hasMore: false, loaded: false, loading: false, version: 0 };
    state.logs.set(key, log);
  }
  return log;
}

/** Merge entries into a log, by id: no duplicates, kept sorted oldest first. An entry whose
 * id is known replaces the one held (an AI answer still streaming, a tool call finished). */
export function mergeEntries(key, entries) {
  const log = getLog(key);
  let added = 0;
  let sorted = true;
  const last = log.entries.length ? log.entries[log.entries.length - 1].id : -Infinity;
  for (const entry of entries) {
    if (!entry) continue;
    if (log.ids.has(entry.id)) {
      const at = log.entries.findLastIndex((e) => e.id === entry.id);
      if (at >= 0 && log.entries[at].text !== entry.text) {
        log.entries[at] = entry;
        added += 1;
      }
      continue;
    }
    log.ids.add(entry.id);
    if (entry.id < last) sorted = false;
    log.entries.push(entry);
    added += 1;
  }
  if (!sorted) log.entries.sort((a, b) => a.id - b.id);
  if (added) {
    log.version += 1;
    changed();
  }
  return added;
}

/** Forget the `count` oldest entries of a log (scrolling up fetches them again). */
export function dropOldest(key, count) {
  const log = getLog(key);
  if (count <= 0) return;
  for (const entry of log.entries.splice(0, count)) log.ids.delete(entry.id);
  log.hasMore = true;
  log.version += 1;
  changed();
}

/** Replace a log with a fresh newest page (after a gap that the page does not bridge). */
export function resetLog(key, entries, hasMore) {
  const log = getLog(key);
  log.entries = [];
  log.ids = new Set();
  log.hasMore = hasMore;
  log.loaded = true;
  mergeEntries(key, entries);
  log.version += 1;
  changed();
}

// ---- recent commands (per session, localStorage) -----------------------------------------

export function recentCommands(sessionId) {
  return load('recent.' + sessionId, []);
}

export function rememberCommand(sessionId, command) {
  const text = command.trim();
  if (!text) return;
  const list = recentCommands(sessionId).filter((c) => c.text !== text);
  list.unshift({ text, at: Date.now() });
  save('recent.' + sessionId, list.slice(0, 100));
}
