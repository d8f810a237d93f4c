// The dashboard: every session as a card, grouped, searchable; new/rename/live/delete sheets.

import { useEffect, useState } from '../vendor/preact/hooks.mjs';
import { del, get, post, patch } from './api.js';
import { byAttention, lastTurnFailed, needsYou } from './attention.js';
import { FolderPicker } from './folders.js';
import { navigate } from './router.js';
import { TOOL_LABELS, formatCost, shortPath, stripAnsi, timeAgo } from './render.js';
import { changed, isViewer, state, toast } from './store.js';
import { ConnPill, Icon, SessionState, Sheet, StateDot, html, serverUnreachable } from './ui.js';

export function Dashboard() {
  const [query, setQuery] = useState('');
  const [compact, setCompact] = useState(savedDensity() === 'compact');
  const toggleCompact = () => {
    saveDensity(compact ? 'comfortable' : 'compact');
    setCompact(!compact);
  };
  const sessions = byAttention(state.sessions.values());
  const q = query.trim().toLowerCase();
  const shown = q ? sessions.filter((s) => [s.name, s.cwd, s.toolType, s.groupName || '']
    .some((v) => v.toLowerCase().includes(q))) : sessions;
  const groups = new Map();
  for (const s of shown) {
    const key = s.groupId || s.groupName || '';
    if (!groups.has(key)) groups.set(key, { name: s.groupName, emoji: s.groupEmoji, items: [] });
    groups.get(key).items.push(s);
  }
  const ordered = [...groups.entries()].sort(([a], [b]) => (a === '' ? 1 : b === '' ? -1 : 0));
  return html`
    <header class="topbar">
      <h1 class="brand"><span class="logo" aria-hidden="true">◆</span> Maestro</h1>
      <${ConnPill} />
      <button type="button" class="icon-btn" aria-label="Compact list" aria-pressed=${compact ? 'true' : 'false'}
        onClick=${toggleCompact}><${Icon} name="rows" /></button>
      <button type="button" class="icon-btn" aria-label="History"
        onClick=${() => { state.sheet = { kind: 'history' }; changed(); }}><${Icon} name="history" /></button>
      <button type="button" class="icon-btn" aria-label="Settings"
        onClick=${() => { state.sheet = { kind: 'settings' }; changed(); }}><${Icon} name="gear" /></button>
    </header>
    <main id="main" class=${compact ? 'dashboard dashboard-compact' : 'dashboard'} aria-label="Sessions">
      ${sessions.length > 5 ? html`<label class="search">
        <${Icon} name="search" size=${18} />
        <span class="sr-only">Search sessions</span>
        <input type="search" placeholder="Search sessions" value=${query}
          onInput=${(e) => setQuery(e.target.value)} /></label>` : null}
      ${!state.conn.everConnected && !sessions.length
        ? html`<p class="empty">Loading sessions…</p>` : null}
      ${state.conn.everConnected && !sessions.length ? html`<div class="empty">
        <p>No sessions yet.</p><p>Start a terminal or an agent with <b>New session</b>.</p></div>` : null}
      ${q && !shown.length ? html`<p class="empty">No session matches “${query}”.</p>` : null}
      ${ordered.map(([key, group]) => html`<section key=${key || 'none'} class="group"
          aria-label=${group.name || 'Sessions'}>
        ${groups.size > 1 || key ? html`<h2 class="group-title">${group.emoji ? group.emoji + ' ' : ''}${group.name || 'Ungrouped'}</h2>` : null}
        <ul class="cards">${group.items.map((s) => html`<${Card} key=${s.id} s=${s} />`)}</ul>
      </section>`)}
    </main>
    ${isViewer() ? null : html`<button type="button" class="fab" onClick=${() => { state.sheet = { kind: 'new' }; changed(); }}>
      <${Icon} name="plus" /> New session</button>`}`;
}

function Card({ s }) {
  const preview = s.lastResponse ? stripAnsi(s.lastResponse.text).trim() : '';
  const failed = lastTurnFailed(s);
  const cost = formatCost(s.usageStats);
  const open = () => navigate('session/' + s.id);
  return html`<li class=${'card' + (s.isLive ? '' : ' card-offline')} data-session-id=${s.id}>
    <a class="card-main" href=${'session/' + s.id} onClick=${(e) => { e.preventDefault(); open(); }}
      aria-label=${`${s.name}, ${TOOL_LABELS[s.toolType] || s.toolType}`}>
      <div class="card-row">
        ${failed && !serverUnreachable() ? html`<${StateDot} value="failed" />` : html`<${SessionState} s=${s} />`}
        ${needsYou(s) ? html`<span class="badge badge-needs" data-testid="needs-you">Needs you</span>` : null}
        <span class="spacer"></span>
        <span class=${'badge ' + (s.isLive ? 'badge-live' : 'badge-off')}>${s.isLive ? 'Remote control on' : 'Remote control off'}</span>
      </div>
      <div class="card-title">${s.name}</div>
      <div class="card-meta">
        <span class="tool">${TOOL_LABELS[s.toolType] || s.toolType}</span>
        <span class="folder" title=${s.cwd}>${shortPath(s.cwd)}</span>
      </div>
      ${preview ? html`<pre class=${failed ? 'preview preview-error' : 'preview'}
        data-testid=${failed ? 'failure' : null}>${preview}</pre>` : null}
      <div class="card-foot">
        ${cost ? html`<span class="cost" aria-label=${'Cost ' + cost}>${cost}</span>` : null}
        <span class="ago">${s.lastOutputAt ? 'Output ' + timeAgo(s.lastOutputAt) : 'No output yet'}</span>
      </div>
    </a>
    ${isViewer() ? null : html`<button type="button" class="icon-btn card-menu" aria-label=${'Actions for ' + s.name}
      onClick=${() => { state.sheet = { kind: 'actions', id: s.id }; changed(); }}><${Icon} name="more" /></button>`}
  </li>`;
}

const closeSheet = () => { state.sheet = null; changed(); };

export function NewSessionSheet() {
  const [form, setForm] = useState({ name: '', cwd: lastCwd(), toolType: 'terminal', groupName: '', tmux: '' });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const tmuxSessions = useTmuxSessions();
  const set = (field) => (e) => setForm({ ...form, [field]: e.target.value });
  const pickTmux = (e) => {
    const tmux = e.target.value;
    setForm({ ...form, tmux, name: form.name || (tmux ? 'tmux ' + tmux : '') });
  };
  const offerTmux = form.toolType === 'terminal' && tmuxSessions.length > 0;
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      const body = { name: form.name.trim(), cwd: form.cwd.trim(), toolType: form.toolType };
      if (form.groupName.trim()) body.groupName = form.groupName.trim();
      if (offerTmux && form.tmux) body.tmux = form.tmux;
      const data = await post('sessions', body);
      try { localStorage.setItem('maestro.lastCwd', body.cwd); } catch (err) { /* ignore */ }
      state.sessions.set(data.session.id, data.session);
      closeSheet();
      navigate('session/' + data.session.id);
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<${Sheet} title="New session" onClose=${closeSheet}>
    <form class="form" onSubmit=${submit}>
      <label>Name<input name="name" required maxlength="200" value=${form.name} onInput=${set('name')}
        autocomplete="off" placeholder="e.g. build" /></label>
      <label>Folder<input name="cwd" required value=${form.cwd} onInput=${set('cwd')}
        autocomplete="off" autocapitalize="off" spellcheck="false" placeholder="~/code/project" /></label>
      <${FolderPicker} last=${lastCwd()} onPick=${(cwd) => setForm({ ...form, cwd })} />
      <label>Agent
        <select name="toolType" value=${form.toolType} onChange=${set('toolType')}>
          ${Object.entries(TOOL_LABELS).map(([id, label]) => html`<option value=${id}>${label}</option>`)}
        </select></label>
      ${offerTmux ? html`<label>Attach to tmux (shared with the desk)
        <select name="tmux" value=${form.tmux} onChange=${pickTmux}>
          <option value="">No: a new shell</option>
          ${tmuxSessions.map((t) => html`<option value=${t.name} disabled=${!t.attachable}>${tmuxLabel(t)}</option>`)}
        </select></label>` : null}
      <label>Group (optional)<input name="groupName" value=${form.groupName} onInput=${set('groupName')}
        autocomplete="off" /></label>
      ${error ? html`<p class="form-error" role="alert">${error}</p>` : null}
      <button type="submit" class="btn btn-primary" disabled=${busy}>${busy ? 'Creating…' : 'Create session'}</button>
    </form>
  </${Sheet}>`;
}

/** The host's tmux sessions ([] while loading, or when tmux is missing or unreachable). */
function useTmuxSessions() {
  const [sessions, setSessions] = useState([]);
  useEffect(() => {
    let live = true;
    get('tmux').then((data) => { if (live) setSessions(data.sessions); }, () => {});
    return () => { live = false; };
  }, []);
  return sessions;
}

function tmuxLabel(t) {
  const windows = t.windows.map((w) => `${w.index}:${w.name}${w.active ? '*' : ''}`).join(' ');
  const attached = t.attached ? ` · ${t.attached} attached` : '';
  return `${t.name} — ${windows}${attached}`;
}

/** The dashboard's density ("compact" or "comfortable"), kept per browser. */
function savedDensity() {
  try { return localStorage.getItem('maestro.density') || 'comfortable'; } catch (err) { return 'comfortable'; }
}

function saveDensity(value) {
  try { localStorage.setItem('maestro.density', value); } catch (err) { /* private mode: not kept */ }
}

function lastCwd() {
  try { return localStorage.getItem('maestro.lastCwd') || ''; } catch (err) { return ''; }
}

export function ActionsSheet({ id }) {
  const s = state.sessions.get(id);
  const [mode, setMode] = useState('menu');
  const [name, setName] = useState(s ? s.name : '');
  if (!s) { closeSheet(); return null; }
  const run = async (fn, done) => {
    try { await fn(); if (done) toast(done); closeSheet(); } catch (err) { toast(err.message, 'error'); }
  };
  if (mode === 'rename') {
    return html`<${Sheet} title="Rename session" onClose=${closeSheet}>
      <form class="form" onSubmit=${(e) => { e.preventDefault(); run(() => patch('session/' + id, { name: name.trim() })); }}>
        <label>Name<input name="name" required maxlength="200" value=${name}
          onInput=${(e) => setName(e.target.value)} /></label>
        <button type="submit" class="btn btn-primary">Save</button>
      </form></${Sheet}>`;
  }
  if (mode === 'delete') {
    return html`<${Sheet} title="Delete session?" onClose=${closeSheet}>
      <p>“${s.name}” and its logs will be deleted and its processes stopped. History is kept.</p>
      <div class="row-buttons">
        <button type="button" class="btn" onClick=${closeSheet}>Cancel</button>
        <button type="button" class="btn btn-danger" onClick=${() => run(async () => {
          await del('session/' + id);
          state.sessions.delete(id);
          if (state.route.view === 'session') navigate('');
        }, 'Session deleted')}>Delete</button>
      </div></${Sheet}>`;
  }
  return html`<${Sheet} title=${s.name} onClose=${closeSheet}>
    <div class="menu">
      <button type="button" class="menu-item" onClick=${() => setMode('rename')}><${Icon} name="edit" /> Rename</button>
      <button type="button" class="menu-item" onClick=${() => run(
        () => post(`session/${id}/${s.isLive ? 'offline' : 'live'}`))}>
        <${Icon} name="bell" /> ${s.isLive ? 'Turn remote control off' : 'Turn remote control on'}</button>
      <button type="button" class="menu-item menu-danger" onClick=${() => setMode('delete')}>
        <${Icon} name="trash" /> Delete…</button>
    </div></${Sheet}>`;
}
