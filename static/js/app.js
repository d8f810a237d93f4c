// Maestro Web: the phone UI. Boots the connection, the router, themes, notifications and the
// service worker, and renders the current view.

import { render } from '../vendor/preact/preact.mjs';
import { useEffect, useState } from '../vendor/preact/hooks.mjs';
import { get, put, rootUrl, save } from './api.js';
import { openApprovals } from './approvals.js';
import { showNeedsYouCount } from './attention.js';
import { connect, initialScope, on, refreshSessions, setScope } from './conn.js';
import { ActionsSheet, Dashboard, NewSessionSheet } from './dashboard.js';
import { STATE_LABELS, stripAnsi, timeAgo } from './render.js';
import { CATEGORIES, disablePush, enablePush, pushSubscription, pushUnavailable, reportPresence } from './push.js';
import { forgetAll, forgetSession, setIdentity } from './logcache.js';
import { navigate, onRoute, parseRoute } from './router.js';
import { ModelSheet, RecentSheet, SessionView, TabSheet, loadNewest } from './session.js';
import { changed, isViewer, logKey, state, subscribe, toast } from './store.js';
import { ConnBanner, Icon, Sheet, Toasts, html } from './ui.js';

// ---- themes -------------------------------------------------------------------------------

let appliedTheme = null;
function applyTheme(theme) {
  if (!theme || theme === appliedTheme) return;
  appliedTheme = theme;
  const root = document.documentElement;
  for (const [name, value] of Object.entries(theme.colors || {})) {
    root.style.setProperty('--' + name, value);
  }
  root.dataset.theme = theme.id;
  root.dataset.mode = theme.mode;
  root.style.colorScheme = theme.mode === 'light' ? 'light' : 'dark';
  const meta = document.querySelector('meta[name="theme-color"]');
  if (meta && theme.colors) meta.setAttribute('content', theme.colors.bgSidebar || theme.colors.bgMain);
  save('theme', theme);
}

// ---- notifications ------------------------------------------------------------------------

// Notes are shown one after another, in the order of their events: a session's later note
// replaces its earlier one (same tag), never the reverse.
let notes = Promise.resolve();

function notify(session, text) {
  if (!state.notify || !('Notification' in window) || Notification.permission !== 'granted') return;
  if (document.visibilityState === 'visible') return;
  const url = rootUrl('session/' + session.id);
  const options = { body: text, tag: 'maestro-' + session.id, data: { url }, icon: rootUrl('static/icons/icon-192.png') };
  notes = notes.then(() => navigator.serviceWorker?.getRegistration(rootUrl('')).then((reg) => {
    if (reg) return reg.showNotification(session.name, options);
    const n = new Notification(session.name, options);
    n.onclick = () => { window.focus(); navigate('session/' + session.id); };
    return null;
  })).catch(() => {});
}

let refreshTimer = null;
on('event', (event) => {
  if (event.type === 'session:state' && event.state !== event.previousState) {
    const s = state.sessions.get(event.sessionId);
    // An open approval's note must not be replaced by the plainer "Waiting for your input".
    if (s && event.state === 'waiting_input' && !openApprovals(s.id).length) notify(s, 'Waiting for your input');
    else if (s && event.state === 'idle' && (event.previousState === 'busy' || event.previousState === 'waiting_input')) {
      notify(s, 'Finished');
    }
    if (event.state === 'idle') {
      // lastResponse/shellCwd are not in the event: re-read the list (free over the socket).
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(refreshSessions, 150);
    }
  }
  if (event.type === 'approval:requested') {
    const s = state.sessions.get(event.sessionId);
    // Same tag as the session's other notes: it replaces "Waiting for your input".
    if (s) notify(s, `${event.approval.kind === 'permission' ? 'May I' : 'Asks'}: ${event.approval.title}`);
  }
  if (event.type === 'theme:change') applyTheme(event.theme);
  if (event.type === 'session:removed') forgetSession(event.sessionId);
});

function loadRole() {
  get('whoami').then((data) => { state.role = data.role; setIdentity(data); changed(); }).catch(() => {});
}

on('init', ({ resumed, first }) => {
  applyTheme(state.theme);
  if (!state.role) loadRole(); // an offline start could not ask yet
  // Logs that could not load (offline start) load now; when the server could not replay what
  // we missed, the open logs are fetched again (merged by entry id: no gap, no duplicate).
  for (const [key, log] of state.logs) {
    const [sessionId, kind, tabId] = key.split('|');
    if (!state.sessions.has(sessionId) || log.loading) continue;
    if (!log.loaded || log.cached || (!first && !resumed)) loadNewest(sessionId, kind === 'ai' ? tabId : null);
  }
});

// ---- sheets -------------------------------------------------------------------------------

const closeSheet = () => { state.sheet = null; changed(); };

function SettingsSheet() {
  const [themes, setThemes] = useState(state.themes);
  useEffect(() => {
    get('themes').then((data) => { state.themes = data.themes; setThemes(data.themes); })
      .catch((err) => toast(err.message, 'error'));
  }, []);
  const choose = (id) => put('theme', { id }).then((data) => applyTheme(data.theme))
    .catch((err) => toast(err.message, 'error'));
  const current = state.theme && state.theme.id;
  return html`<${Sheet} title="Settings" onClose=${closeSheet}>
    ${isViewer() ? null : html`<h3 class="section-title">Theme</h3>
    <div class="themes" role="radiogroup" aria-label="Theme">
      ${themes.map((t) => html`<button type="button" key=${t.id} role="radio" aria-checked=${t.id === current}
        class=${'theme-swatch' + (t.id === current ? ' selected' : '')} data-theme-id=${t.id}
        style=${`background:${t.colors.bgMain};color:${t.colors.textMain};border-color:${t.id === current ? t.colors.accent : t.colors.border}`}
        onClick=${() => choose(t.id)}>
        <span class="swatch-dots" aria-hidden="true">${['accent', 'success', 'warning', 'error'].map((c) => html`
          <span style=${'background:' + t.colors[c]}></span>`)}</span>
        <span>${t.name}</span></button>`)}
    </div>`}
    <${SecureContextNote} />
    <${NotificationSettings} />
    <${KeptHere} />
  </${Sheet}>`;
}

// A borrowed or shared phone: what this browser keeps of the sessions can be forgotten.
function KeptHere() {
  const forget = () => forgetAll()
    .then(() => toast('Cached logs forgotten on this device'))
    .catch(() => toast('This browser keeps no cached logs'));
  return html`<h3 class="section-title">This device</h3>
    <p class="muted">The last output of recently opened sessions is kept here, to show while offline.</p>
    <button type="button" class="btn" onClick=${forget}>Forget cached logs</button>`;
}

// "Enable notifications": Web Push (reaches a locked phone) with a switch per category; where
// the browser has no push, notifications from this page while it is open in the background.
function NotificationSettings() {
  const [kept, setKept] = useState(pushSubscription());
  const [busy, setBusy] = useState(false);
  const [categories, setCategories] = useState((kept && kept.categories) || CATEGORIES.map(([id]) => id));
  const unavailable = pushUnavailable();
  const run = async (work) => {
    setBusy(true);
    try { await work(); } catch (err) { toast(err.message, 'error'); } finally { setBusy(false); }
  };
  const subscribe = (wanted) => run(async () => {
    const saved = await enablePush(wanted);
    if (state.notify) { state.notify = false; save('notify', false); } // push covers it now
    setKept({ id: saved.id, categories: saved.categories });
    setCategories(saved.categories);
  });
  const toggle = () => {
    if (unavailable || (!kept && state.notify)) return toggleInPage();
    if (kept) return run(async () => { await disablePush(); setKept(null); });
    // A browser may offer push and still fail to subscribe (no push service, a view-only
    // link, the server's limit): this page's own notifications then stand in.
    return subscribe(categories).then(() => (pushSubscription() ? null : toggleInPage(
      'No push here: you are notified while this page is open in the background')));
  };
  const choose = (id, on) => {
    const wanted = CATEGORIES.map(([c]) => c).filter((c) => (c === id ? on : categories.includes(c)));
    if (!wanted.length) { toast('Keep at least one, or turn notifications off', 'error'); return; }
    setCategories(wanted);
    if (kept) subscribe(wanted);
  };
  const enabled = Boolean(kept) || state.notify;
  return html`<h3 class="section-title">Notifications</h3>
    <label class="switch-row"><input type="checkbox" role="switch" data-push-toggle checked=${enabled}
      disabled=${busy} onChange=${toggle} />
      Enable notifications</label>
    ${unavailable
    ? html`<p class="muted">${unavailable} This page can still notify you while it is open in the background.</p>`
    : html`<fieldset class="push-categories" disabled=${busy}><legend class="muted">Notify me when a session</legend>
      ${CATEGORIES.map(([id, label]) => html`<label class="switch-row" key=${id}>
        <input type="checkbox" data-push-category=${id} checked=${categories.includes(id)}
          onChange=${(e) => choose(id, e.target.checked)} /> ${label}</label>`)}
      </fieldset>`}`;
}

async function toggleInPage(why) {
  if (!state.notify) {
    if (!('Notification' in window)) { toast('This browser has no notifications', 'error'); return; }
    const permission = await Notification.requestPermission();
    if (permission !== 'granted') { toast('Notifications are blocked for this site', 'error'); return; }
    if (why) toast(why);
  }
  state.notify = !state.notify;
  save('notify', state.notify);
  changed();
}

// Browsers give offline start, install, the clipboard and notifications only to secure
// pages (HTTPS, or this machine itself): say which this is, and the flag that makes it one.
function SecureContextNote() {
  return html`<h3 class="section-title">Connection</h3>
    ${window.isSecureContext
    ? html`<p class="muted" data-secure-context="yes">Secure connection: offline start, installing as an app and the clipboard all work here.</p>`
    : html`<p class="muted" data-secure-context="no">Not a secure connection (plain HTTP): this browser turns off offline start, installing as an app, the clipboard and notifications here. Start the server with <code>--tls self-signed</code> (or <code>--tunnel tailscale</code> / <code>--tunnel cloudflare</code>) and open its https address.</p>`}`;
}

function HistorySheet() {
  const [entries, setEntries] = useState(null);
  const [sessionId, setSessionId] = useState(state.route.view === 'session' ? state.route.id : '');
  const [q, setQ] = useState('');
  useEffect(() => {
    const query = sessionId ? `?sessionId=${encodeURIComponent(sessionId)}&limit=500` : '?limit=500';
    get('history' + query).then((data) => setEntries(data.entries)).catch((err) => toast(err.message, 'error'));
  }, [sessionId]);
  const needle = q.trim().toLowerCase();
  const shown = (entries || []).filter((e) => !needle || (e.summary + '\n' + e.fullResponse + '\n' + e.sessionName)
    .toLowerCase().includes(needle));
  return html`<${Sheet} title="History" onClose=${closeSheet} full=${true}>
    <div class="filters">
      <label><span class="sr-only">Session</span>
        <select value=${sessionId} onChange=${(e) => setSessionId(e.target.value)} aria-label="Filter by session">
          <option value="">All sessions</option>
          ${[...state.sessions.values()].map((s) => html`<option value=${s.id}>${s.name}</option>`)}
        </select></label>
      <label class="search"><${Icon} name="search" size=${18} /><span class="sr-only">Search history</span>
        <input type="search" placeholder="Search" value=${q} onInput=${(e) => setQ(e.target.value)} /></label>
    </div>
    ${entries === null ? html`<p class="empty">Loading…</p>` : null}
    ${entries && !shown.length ? html`<p class="empty">Nothing here yet.</p>` : null}
    <ul class="history">${shown.map((e) => html`<li key=${e.id}><details class="history-entry">
      <summary>
        <span class=${'result ' + (e.success ? 'ok' : 'fail')}>${e.success ? '✓' : e.exitCode === null ? '…' : '✗ ' + e.exitCode}</span>
        <code class="history-cmd">${e.summary}</code>
        <span class="muted history-meta">${e.sessionName} · ${timeAgo(e.timestamp)} · ${(e.elapsedTimeMs / 1000).toFixed(1)}s</span>
      </summary>
      <pre class="term">${stripAnsi(e.fullResponse).trim() || (e.exitCode > 128 ? 'Interrupted' : '(no output)')}</pre>
    </details></li>`)}</ul>
  </${Sheet}>`;
}

function SheetHost() {
  const sheet = state.sheet;
  if (!sheet) return null;
  switch (sheet.kind) {
    case 'new': return html`<${NewSessionSheet} />`;
    case 'actions': return html`<${ActionsSheet} id=${sheet.id} />`;
    case 'settings': return html`<${SettingsSheet} />`;
    case 'history': return html`<${HistorySheet} />`;
    case 'tab': return html`<${TabSheet} id=${sheet.id} tabId=${sheet.tabId} />`;
    case 'recent': return html`<${RecentSheet} id=${sheet.id} insert=${sheet.insert} />`;
    case 'model': return html`<${ModelSheet} id=${sheet.id} tabId=${sheet.tabId} />`;
    default: return null;
  }
}

// ---- the app ------------------------------------------------------------------------------

function App() {
  const [, setVersion] = useState(0);
  useEffect(() => subscribe(() => setVersion((n) => n + 1)), []);
  useEffect(() => {
    const timer = setInterval(() => setVersion((n) => n + 1), 30000); // "time since" labels
    return () => clearInterval(timer);
  }, []);
  const route = state.route;
  const current = route.view === 'session' && state.sessions.get(route.id);
  showNeedsYouCount(current ? `${current.name} · Maestro` : 'Maestro');
  return html`<a class="skip" href="#main">Skip to content</a>
    <div class=${'app view-' + route.view}>
      <${ConnBanner} />
      ${route.view === 'session' ? html`<${SessionView} key=${route.id} id=${route.id} />` : html`<${Dashboard} />`}
    </div>
    <${SheetHost} />
    <${Toasts} />`;
}

function start() {
  // Pin the <head> links to absolute URLs: after pushState a relative href would resolve
  // against the new path (session/<id>).
  for (const link of document.querySelectorAll('link[href]')) link.setAttribute('href', link.href);
  state.route = parseRoute();
  applyTheme(JSON.parse(localStorage.getItem('maestro.theme') || 'null'));
  onRoute((route) => {
    setScope(route.view === 'session' ? route.id : null);
    reportPresence();
  });
  // Keep the command bar above the on-screen keyboard: size the app to the visual viewport
  // (iOS does not shrink the layout viewport when the keyboard opens).
  const vv = window.visualViewport;
  if (vv) {
    const fit = () => {
      document.documentElement.style.setProperty('--app-height', `${Math.round(vv.height)}px`);
      if (vv.offsetTop > 0) window.scrollTo(0, 0);
    };
    vv.addEventListener('resize', fit);
    vv.addEventListener('scroll', fit);
    fit();
  }
  initialScope(state.route.view === 'session' ? state.route.id : null);
  connect();
  loadRole();
  get('commands').then((data) => { state.commands = data.commands; }).catch(() => {});
  get('agents').then((data) => { state.agents = new Map(data.agents.map((a) => [a.id, a])); changed(); })
    .catch(() => {});
  render(html`<${App} />`, document.getElementById('app'));
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register(rootUrl('sw.js'), { scope: rootUrl('') }).catch(() => {});
    navigator.serviceWorker.addEventListener('message', (event) => {
      if (event.data && event.data.type === 'open' && event.data.url) navigate(event.data.url);
    });
  }
  window.maestro = { state, logKey, STATE_LABELS }; // for debugging and tests
}

start();
