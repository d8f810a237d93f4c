// The live connection: one WebSocket with resume (`since` = last seq seen), reconnect with
// backoff and a countdown, an immediate retry when the page becomes visible or the network comes
// back, a heartbeat that detects dead sockets, and the persisted offline command queue.

import { save, wsUrl } from './api.js';
import {
  QUEUE_MAX, changed, logKey, mergeEntries, saveQueue, state, toast,
} from './store.js';

const MAX_ATTEMPTS = 10;
const HEARTBEAT_MS = 20000;
const PONG_TIMEOUT_MS = 8000;

let socket = null;
let lastSeq = null;
let subscribed = null;       // the session whose output this socket receives (null: all)
let ptyWanted = false;       // also receive that session's raw PTY bytes (the terminal view)
let retryTimer = null;
let heartbeat = null;
let pongTimer = null;
let requestCounter = 0;
const pending = new Map();   // requestId → {resolve, reject, timer}
let flushing = false;
const idleCounts = new Map(); // session id → how many times it has gone idle on this page
// The longest a queued shell command waits for the one before it to end before being typed
// anyway (a long build should not hold the rest of the queue for ever).
const QUEUE_WAIT_MS = 120000;
const handlers = { event: [], init: [], pty: [] };

/** Listen to 'event' (each live event), 'init' (each (re)connection) or 'pty' (session:pty
 * events, which bypass the store); returns the function that stops listening. */
export function on(kind, fn) {
  handlers[kind].push(fn);
  return () => { handlers[kind] = handlers[kind].filter((f) => f !== fn); };
}

function setConn(patch) {
  Object.assign(state.conn, patch);
  changed();
}

export function isOpen() {
  return socket !== null && socket.readyState === WebSocket.OPEN && state.conn.status === 'open';
}

export function connect() {
  clearTimeout(retryTimer);
  retryTimer = null;
  if (socket && (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING)) {
    return;
  }
  if (navigator.onLine === false) {
    setConn({ status: 'offline' });
    return;
  }
  setConn({ status: 'connecting', retryAt: 0 });
  const ws = new WebSocket(wsUrl({ sessionId: subscribed, since: lastSeq, pty: ptyWanted ? 1 : null }));
  socket = ws;
  ws.onmessage = (message) => {
    if (socket !== ws) return;
    let data;
    try { data = JSON.parse(message.data); } catch (err) { return; }
    handle(data);
  };
  ws.onclose = (event) => {
    if (socket !== ws) return;
    socket = null;
    stopHeartbeat();
    failPending('The connection was lost');
    if (event.code === 1008 && state.conn.status !== 'open' && subscribed) {
      // The session we asked for is gone: fall back to the dashboard scope.
      subscribed = null;
    }
    scheduleRetry();
  };
  ws.onerror = () => { /* onclose follows */ };
}

function scheduleRetry() {
  if (navigator.onLine === false) {
    setConn({ status: 'offline', retryAt: 0 });
    return;
  }
  const attempt = state.conn.attempt + 1;
  if (attempt > MAX_ATTEMPTS) {
    setConn({ status: 'failed', retryAt: 0 });
    return;
  }
  const delay = Math.min(30000, 1000 * 2 ** (attempt - 1)) * (0.8 + Math.random() * 0.4);
  setConn({ status: 'waiting', attempt, maxAttempts: MAX_ATTEMPTS, retryAt: Date.now() + delay });
  retryTimer = setTimeout(connect, delay);
}

/** Reconnect now (the "Retry now" button, page visible again, network back). */
export function retryNow(resetAttempts = true) {
  if (isOpen()) return;
  if (resetAttempts) state.conn.attempt = 0;
  if (socket && socket.readyState === WebSocket.CONNECTING) return;
  connect();
}

/** Drop the socket at once (the browser says we are offline) and wait for the network. */
function dropForOffline() {
  clearTimeout(retryTimer);
  const ws = socket;
  socket = null;
  stopHeartbeat();
  failPending('You are offline');
  if (ws) { try { ws.close(); } catch (err) { /* ignore */ } }
  setConn({ status: 'offline', retryAt: 0 });
}

window.addEventListener('online', () => retryNow(true));
window.addEventListener('offline', dropForOffline);
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') {
    if (isOpen()) ping(); else retryNow(true);
  }
});
window.addEventListener('pageshow', (event) => { if (event.persisted) retryNow(true); });

function startHeartbeat() {
  stopHeartbeat();
  heartbeat = setInterval(ping, HEARTBEAT_MS);
}

function stopHeartbeat() {
  clearInterval(heartbeat);
  clearTimeout(pongTimer);
  heartbeat = null;
  pongTimer = null;
}

function ping() {
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  socket.send(JSON.stringify({ type: 'ping' }));
  clearTimeout(pongTimer);
  const ws = socket;
  pongTimer = setTimeout(() => { if (socket === ws) ws.close(); }, PONG_TIMEOUT_MS);
}

function handle(data) {
  if (typeof data.seq === 'number') lastSeq = Math.max(lastSeq || 0, data.seq);
  if (data.type === 'pong') {
    clearTimeout(pongTimer);
    return;
  }
  if (data.type === 'init') {
    lastSeq = data.seq;
    const first = !state.conn.everConnected;
    setConn({ status: 'open', attempt: 0, retryAt: 0, everConnected: true });
    startHeartbeat();
    state.sessions = new Map(data.sessions.map((s) => [s.id, s]));
    save('sessions', data.sessions); // shown while offline after a reload
    if (data.theme) state.theme = data.theme;
    for (const fn of handlers.init) fn({ resumed: data.resumed, first });
    changed();
    flushQueue();
    return;
  }
  if (data.requestId !== undefined && pending.has(data.requestId)) {
    const request = pending.get(data.requestId);
    pending.delete(data.requestId);
    clearTimeout(request.timer);
    if (data.success === false || data.type === 'error') request.reject(replyError(data));
    else request.resolve(data);
    return;
  }
  if (data.type === 'sessions_list') {
    state.sessions = new Map(data.sessions.map((s) => [s.id, s]));
    save('sessions', data.sessions);
    changed();
    return;
  }
  if (data.type === 'error') {
    toast(data.message || 'Server error', 'error');
    return;
  }
  if (data.type === 'session:pty') { // raw bytes for the terminal view: not state, no re-render
    for (const fn of handlers.pty) fn(data);
    return;
  }
  applyEvent(data);
  for (const fn of handlers.event) fn(data);
}

function replyError(data) {
  const err = new Error(data.code === 'rate_limited'
    ? `Too many requests: try again in ${data.retryAfter} s`
    : data.error || data.message || 'Request failed');
  err.status = data.statusCode || (data.code === 'rate_limited' ? 429 : 0);
  err.retryAfter = data.retryAfter;
  return err;
}

function applyEvent(event) {
  const sessions = state.sessions;
  const s = event.sessionId ? sessions.get(event.sessionId) : null;
  switch (event.type) {
    case 'session:state':
      if (event.state === 'idle') idleCounts.set(event.sessionId, (idleCounts.get(event.sessionId) || 0) + 1);
      if (s) {
        sessions.set(s.id, { ...s, state: event.state, name: event.name, toolType: event.toolType,
          inputMode: event.inputMode, cwd: event.cwd, echo: event.echo });
      }
      break;
    case 'session:added':
      sessions.set(event.session.id, event.session);
      break;
    case 'session:removed':
      sessions.delete(event.sessionId);
      break;
    case 'session:live':
      if (s) sessions.set(s.id, { ...s, isLive: true, liveEnabledAt: event.enabledAt });
      break;
    case 'session:offline':
      if (s) sessions.set(s.id, { ...s, isLive: false });
      break;
    case 'tabs:change':
      if (s) sessions.set(s.id, { ...s, aiTabs: event.aiTabs, activeTabId: event.activeTabId });
      break;
    case 'theme:change':
      state.theme = event.theme;
      break;
    case 'session:output': {
      const entry = event.entry;
      if (s && entry && entry.source !== 'user') {
        sessions.set(s.id, { ...s, lastOutputAt: entry.timestamp });
      }
      const key = logKey(event.sessionId, event.tabId);
      if (state.logs.has(key)) mergeEntries(key, [entry]);
      break;
    }
    default:
      break;
  }
  changed();
}

/** Send a request message and wait for its reply (rejects on failure or lost connection). */
export function request(message, timeoutMs = 30000) {
  return new Promise((resolve, reject) => {
    if (!isOpen()) {
      reject(Object.assign(new Error('Not connected'), { status: 0 }));
      return;
    }
    const requestId = `r${Date.now().toString(36)}-${++requestCounter}`;
    const timer = setTimeout(() => {
      pending.delete(requestId);
      reject(Object.assign(new Error('No answer from the server'), { status: 0 }));
    }, timeoutMs);
    pending.set(requestId, { resolve, reject, timer });
    socket.send(JSON.stringify({ ...message, requestId }));
  });
}

function failPending(reason) {
  for (const [id, request] of pending) {
    clearTimeout(request.timer);
    request.reject(Object.assign(new Error(reason), { status: 0 }));
    pending.delete(id);
  }
}

export function send(message) {
  if (isOpen()) socket.send(JSON.stringify(message));
}

/** Receive the output of one session only (null: every session, for the dashboard). */
export function setScope(sessionId) {
  if (subscribed === sessionId) return;
  subscribed = sessionId;
  ptyWanted = false;
  send({ type: 'subscribe', sessionId });
}

/** Also receive the scoped session's PTY bytes (`session:pty`), while a terminal view is open. */
export function setPty(wanted) {
  if (ptyWanted === wanted || !subscribed) return;
  ptyWanted = wanted;
  send({ type: 'subscribe', sessionId: subscribed, pty: wanted });
}

export function refreshSessions() {
  send({ type: 'get_sessions' });
}

// ---- the command queue --------------------------------------------------------------------

/**
 * Queue a command; it is sent in order as soon as the socket is open. Everything typed goes
 * through the queue, so nothing is lost when the connection drops between typing and sending.
 */
export function enqueue(command) {
  if (state.queue.length >= QUEUE_MAX) {
    toast(`The offline queue is full (${QUEUE_MAX} commands); wait for the connection`, 'error');
    return false;
  }
  state.queue = [...state.queue, { ...command, qid: `q${Date.now().toString(36)}-${++requestCounter}`,
    queuedAt: Date.now() }];
  saveQueue();
  flushQueue();
  return true;
}

export function cancelQueued(qid) {
  state.queue = qid ? state.queue.filter((item) => item.qid !== qid) : [];
  saveQueue();
}

/** Resolve once the session has gone idle again since `seen` (its idle count then), the
 * connection drops, the session goes away, or QUEUE_WAIT_MS pass. */
function untilIdleAfter(sessionId, seen) {
  const until = Date.now() + QUEUE_WAIT_MS;
  return new Promise((resolve) => {
    const check = () => {
      const done = (idleCounts.get(sessionId) || 0) > seen || !isOpen()
        || !state.sessions.has(sessionId) || Date.now() > until;
      if (done) resolve(); else setTimeout(check, 100);
    };
    check();
  });
}

async function flushQueue() {
  if (flushing) return;
  flushing = true;
  let running = null; // {sessionId, seen}: a queued shell command sent and not yet seen to end
  try {
    while (state.queue.length && isOpen()) {
      const item = state.queue[0];
      // Queued shell commands run one after the other, as if typed at each prompt: one sent
      // while the one before still runs would be typed into it as input.
      if (running && running.sessionId === item.sessionId && item.inputMode !== 'ai') {
        await untilIdleAfter(running.sessionId, running.seen);
        if (!isOpen()) break;
      }
      running = null;
      item.sending = true;
      changed();
      try {
        const message = { type: 'send_command', sessionId: item.sessionId, command: item.command };
        if (item.inputMode) message.inputMode = item.inputMode;
        if (item.tabId && item.inputMode === 'ai') message.tabId = item.tabId;
        const seen = idleCounts.get(item.sessionId) || 0;
        const result = await request(message);
        if (result.mode === 'command') running = { sessionId: item.sessionId, seen };
        if (result.queued) toast('The agent is busy: your prompt runs after the current turn');
        state.queue = state.queue.filter((q) => q.qid !== item.qid);
        saveQueue();
      } catch (err) {
        item.sending = false;
        if (err.status === 0) break; // connection lost: keep it, resend after reconnecting
        if (err.status === 429) {
          toast(err.message, 'error');
          setTimeout(flushQueue, (err.retryAfter || 2) * 1000);
          break;
        }
        // A definite refusal (offline session, 501, deleted session...): drop it and say so.
        state.queue = state.queue.filter((q) => q.qid !== item.qid);
        saveQueue();
        toast(`Not sent: ${err.message}`, 'error', 7000);
      }
    }
  } finally {
    flushing = false;
    changed();
  }
}

export function initialScope(sessionId) {
  subscribed = sessionId;
}
