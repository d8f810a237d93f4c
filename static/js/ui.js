// Shared UI pieces: html tag, icons, state dot, connection banner, toasts, bottom sheet.

import { h } from '../vendor/preact/preact.mjs';
import { useEffect, useLayoutEffect, useRef, useState } from '../vendor/preact/hooks.mjs';
import htm from '../vendor/htm/htm.mjs';
import { STATE_LABELS } from './render.js';
import { state } from './store.js';
import { cancelQueued, retryNow } from './conn.js';

export const html = htm.bind(h);

const PATHS = {
  back: 'M15 18l-6-6 6-6',
  plus: 'M12 5v14M5 12h14',
  send: 'M5 12h13M12 5l7 7-7 7',
  newline: 'M20 5v7a3 3 0 01-3 3H5M9 11l-4 4 4 4',
  stop: 'M7 7h10v10H7z',
  more: 'M5 12h.01M12 12h.01M19 12h.01',
  gear: 'M12 15a3 3 0 100-6 3 3 0 000 6zM19.4 15a1.7 1.7 0 00.3 1.8l.1.1a2 2 0 11-2.8 2.8l-.1-.1a1.7 1.7 0 00-1.8-.3 1.7 1.7 0 00-1 1.5V21a2 2 0 11-4 0v-.1a1.7 1.7 0 00-1.1-1.5 1.7 1.7 0 00-1.8.3l-.1.1a2 2 0 11-2.8-2.8l.1-.1a1.7 1.7 0 00.3-1.8 1.7 1.7 0 00-1.5-1H3a2 2 0 110-4h.1a1.7 1.7 0 001.5-1.1 1.7 1.7 0 00-.3-1.8l-.1-.1a2 2 0 112.8-2.8l.1.1a1.7 1.7 0 001.8.3H9a1.7 1.7 0 001-1.5V3a2 2 0 114 0v.1a1.7 1.7 0 001 1.5 1.7 1.7 0 001.8-.3l.1-.1a2 2 0 112.8 2.8l-.1.1a1.7 1.7 0 00-.3 1.8V9a1.7 1.7 0 001.5 1H21a2 2 0 110 4h-.1a1.7 1.7 0 00-1.5 1z',
  history: 'M3 12a9 9 0 109-9 9 9 0 00-6.4 2.6L3 8M3 3v5h5M12 7v5l3 3',
  rows: 'M4 6h16M4 10h16M4 14h16M4 18h16',
  search: 'M11 19a8 8 0 100-16 8 8 0 000 16zM21 21l-4.3-4.3',
  close: 'M18 6L6 18M6 6l12 12',
  down: 'M12 5v14M19 12l-7 7-7-7',
  terminal: 'M4 17l6-6-6-6M12 19h8',
  sparkle: 'M12 3l1.9 5.1L19 10l-5.1 1.9L12 17l-1.9-5.1L5 10l5.1-1.9z',
  trash: 'M3 6h18M8 6V4h8v2M6 6l1 14h10l1-14',
  edit: 'M12 20h9M16.5 3.5a2.1 2.1 0 013 3L7 19l-4 1 1-4z',
  bell: 'M18 8a6 6 0 10-12 0c0 7-3 9-3 9h18s-3-2-3-9M13.7 21a2 2 0 01-3.4 0',
  star: 'M12 2l3.1 6.3 6.9 1-5 4.9 1.2 6.8L12 17.8 5.8 21l1.2-6.8-5-4.9 6.9-1z',
};

export function Icon({ name, size = 20 }) {
  return html`<svg class="icon" width=${size} height=${size} viewBox="0 0 24 24" fill="none"
    stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"
    aria-hidden="true" focusable="false"><path d=${PATHS[name]} /></svg>`;
}

export function StateDot({ value, withLabel = true }) {
  const label = STATE_LABELS[value] || value;
  return html`<span class=${'state state-' + value} data-state=${value}>
    <span class="dot" aria-hidden="true"></span>${withLabel
      ? html`<span class="state-label">${label}</span>`
      : html`<span class="sr-only">${label}</span>`}</span>`;
}

/** Whether the server cannot be reached now (after it once was): what the page knows of the
 * sessions' states is stale. */
export const serverUnreachable = () => state.conn.status !== 'open'
  && (state.conn.everConnected || state.conn.status !== 'connecting');

/** A session's state, or "Unreachable" while the server is: never a stale "Busy". */
export function SessionState({ s, withLabel = true }) {
  return html`<${StateDot} value=${serverUnreachable() ? 'unreachable' : s.state} withLabel=${withLabel} />`;
}

export function ConnPill() {
  const c = state.conn;
  const label = { open: 'Connected', connecting: 'Connecting', waiting: 'Reconnecting',
    offline: 'Offline', failed: 'Disconnected' }[c.status] || c.status;
  return html`<span class=${'conn conn-' + c.status} role="status" aria-label=${'Connection: ' + label}>
    <span class="dot" aria-hidden="true"></span><span class="conn-label">${label}</span></span>`;
}

function useTick(ms, active) {
  const [, set] = useState(0);
  useEffect(() => {
    if (!active) return undefined;
    const timer = setInterval(() => set((n) => n + 1), ms);
    return () => clearInterval(timer);
  }, [active, ms]);
}

/** The banner shown while disconnected, with the countdown and "Retry now". */
export function ConnBanner() {
  const c = state.conn;
  const down = serverUnreachable();
  useTick(500, down);
  if (!down) return null;
  let text;
  if (c.status === 'offline') text = 'You are offline. Commands you send will wait in the queue.';
  else if (c.status === 'waiting') {
    const secs = Math.max(0, Math.ceil((c.retryAt - Date.now()) / 1000));
    text = `Connection lost. Attempt ${c.attempt} of ${c.maxAttempts} in ${secs}s`;
  } else if (c.status === 'failed') text = 'Could not reconnect to the server.';
  else text = 'Reconnecting…';
  return html`<div class="banner banner-warn" role="alert" data-testid="conn-banner">
    <span>${text}</span>
    ${c.status !== 'connecting' && c.status !== 'offline'
      ? html`<button type="button" class="btn btn-small" onClick=${() => retryNow(true)}>Retry now</button>`
      : null}
  </div>`;
}

/** The offline queue, with cancel buttons. */
export function QueueBanner({ sessionId }) {
  const items = state.queue.filter((q) => !sessionId || q.sessionId === sessionId);
  const [open, setOpen] = useState(false);
  if (!items.length) return null;
  const waiting = state.conn.status !== 'open';
  return html`<div class="banner banner-queue" role="status" data-testid="queue-banner">
    <button type="button" class="banner-main" aria-expanded=${open} onClick=${() => setOpen(!open)}>
      ${waiting ? `${items.length} queued — sent when the connection is back` : `Sending ${items.length}…`}
    </button>
    <button type="button" class="btn btn-small" onClick=${() => items.forEach((q) => cancelQueued(q.qid))}
      aria-label="Cancel all queued commands">Cancel all</button>
    ${open ? html`<ul class="queue-list">${items.map((q) => html`<li key=${q.qid}>
      <code>${q.command}</code>
      <button type="button" class="icon-btn" aria-label=${'Cancel queued command ' + q.command}
        onClick=${() => cancelQueued(q.qid)}><${Icon} name="close" size=${16} /></button></li>`)}</ul>` : null}
  </div>`;
}

/** Toasts sit between the header and the command bar (or the bottom), never over either:
 * their room is measured from the page's own header and command bar. */
export function Toasts() {
  const box = useRef(null);
  useLayoutEffect(() => {
    const place = () => {
      const header = document.querySelector('header.topbar');
      const bar = document.querySelector('.commandbar');
      const top = header ? header.getBoundingClientRect().bottom : 0;
      const bottom = bar ? bar.getBoundingClientRect().top : window.innerHeight;
      box.current.style.setProperty('--toast-top', `${Math.round(top) + 8}px`);
      box.current.style.setProperty('--toast-room', `${Math.max(0, Math.round(bottom - top) - 16)}px`);
    };
    place();
    window.addEventListener('resize', place);
    return () => window.removeEventListener('resize', place);
  });
  return html`<div class="toasts" ref=${box} aria-live="polite">${state.toasts.map((t) => html`
    <div key=${t.id} class=${'toast toast-' + t.kind} role=${t.kind === 'error' ? 'alert' : 'status'}>${t.message}${
      t.count > 1 ? html` <span class="toast-count" aria-label=${t.count + ' times'}>×${t.count}</span>` : null}</div>`)}
  </div>`;
}

/** A bottom sheet (modal dialog) with a title; closes on the backdrop and Escape. */
export function Sheet({ title, onClose, children, full = false }) {
  const ref = useRef(null);
  useEffect(() => {
    const previous = document.activeElement;
    const node = ref.current;
    const first = node && node.querySelector('input, select, textarea, button:not(.sheet-close)');
    if (first) first.focus({ preventScroll: true });
    const onKey = (e) => { if (e.key === 'Escape') onClose(); };
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('keydown', onKey);
      if (previous && previous.focus) previous.focus({ preventScroll: true });
    };
  }, []);
  return html`<div class="sheet-backdrop" onClick=${(e) => { if (e.target === e.currentTarget) onClose(); }}>
    <div class=${'sheet' + (full ? ' sheet-full' : '')} role="dialog" aria-modal="true" aria-label=${title} ref=${ref}>
      <div class="sheet-head">
        <h2>${title}</h2>
        <button type="button" class="icon-btn sheet-close" aria-label="Close" onClick=${onClose}>
          <${Icon} name="close" /></button>
      </div>
      <div class="sheet-body">${children}</div>
    </div>
  </div>`;
}
