// The session view: header, AI tab bar, the conversation / terminal log (tail-first, older pages
// on scroll up, auto-scroll with "jump to latest"), the command bar and the terminal key bar;
// terminal sessions switch between that log view and the terminal view (static/js/terminal.js).

import { useEffect, useLayoutEffect, useRef, useState } from '../vendor/preact/hooks.mjs';
import { interruptSession, sendKeys, sendSecret } from './actions.js';
import { get, load, patch, post, save } from './api.js';
import { ApprovalCard, loadApprovals, openApprovals } from './approvals.js';
import { enqueue, request, setScope } from './conn.js';
import {
  WINDOW_CHARS, capWindow, forgettable, growDown, growUp, indexOfId, tailWindow,
} from './log-window.js';
import { DiffView } from './diff.js';
import { cacheLog, cachedLog } from './logcache.js';
import { navigate } from './router.js';
import { TOOL_LABELS, ansiHtml, copyText, markdownHtml, shortPath, stripAnsi } from './render.js';
import {
  changed, dropOldest, getLog, isViewer, logKey, mergeEntries, recentCommands, rememberCommand,
  resetLog, state, toast,
} from './store.js';
import { TerminalView } from './terminal.js';
import { ConnPill, Icon, QueueBanner, SessionState, Sheet, html, serverUnreachable } from './ui.js';

// Entries per page: the newest page first, older pages on scroll up. `maestro.pageSize` in
// localStorage overrides both (for debugging and the tests).
const PAGE = load('pageSize', 300);
const OLDER_PAGE = load('pageSize', 200);

/** Fetch the newest page of a log and merge it (or replace the log when it does not connect). */
export async function loadNewest(sessionId, tabId) {
  const key = logKey(sessionId, tabId);
  const log = getLog(key);
  log.loading = true;
  changed();
  const query = tabId ? `kind=ai&tabId=${encodeURIComponent(tabId)}` : 'kind=shell';
  try {
    const data = await get(`session/${sessionId}/logs?${query}&limit=${PAGE}`);
    const newestKnown = log.entries.length ? log.entries[log.entries.length - 1].id : null;
    const oldestNew = data.entries.length ? data.entries[0].id : null;
    if (!log.loaded) log.hasMore = data.hasMore;
    if (log.cached) {
      log.cached = false; // the server's copy replaces what this browser had kept
      resetLog(key, data.entries, data.hasMore);
    } else if (newestKnown !== null && oldestNew !== null && oldestNew > newestKnown && data.hasMore) {
      resetLog(key, data.entries, true); // a gap we cannot bridge: start again from the tail
    } else {
      mergeEntries(key, data.entries);
    }
    log.loaded = true;
    log.failed = null;
  } catch (err) {
    if (err.status === 404) { toast('This session no longer exists', 'error'); navigate('', true); }
    else if (!(err.status === 0 && !log.loaded && await showCached(key))) {
      log.failed = err.message; // said in the log too: a blank log would look like no output
      toast(err.message, 'error');
    }
  } finally {
    log.loading = false;
    changed();
  }
}

/** Offline: show what this browser kept of the log (marked as cached); false if nothing. */
async function showCached(key) {
  const entries = await cachedLog(key);
  if (!entries || !entries.length) return false;
  resetLog(key, entries, false);
  getLog(key).cached = true;
  return true;
}

async function loadOlder(sessionId, tabId) {
  const key = logKey(sessionId, tabId);
  const log = getLog(key);
  if (log.loading || !log.hasMore || !log.entries.length) return;
  log.loading = true;
  const query = tabId ? `kind=ai&tabId=${encodeURIComponent(tabId)}` : 'kind=shell';
  try {
    const data = await get(`session/${sessionId}/logs?${query}&before=${log.entries[0].id}&limit=${OLDER_PAGE}`);
    log.hasMore = data.hasMore;
    mergeEntries(key, data.entries);
  } catch (err) {
    toast(err.message, 'error');
  } finally {
    log.loading = false;
    changed();
  }
}

function viewTab(s, mode) {
  return mode === 'ai' ? s.activeTabId : null;
}

/** The log or the terminal view of a terminal session, remembered per session. */
function useViewChoice(id) {
  const [view, setView] = useState(() => load('view.' + id, 'log'));
  const choose = (next) => { setView(next); save('view.' + id, next); };
  return [view, choose];
}

export function SessionView({ id }) {
  const s = state.sessions.get(id);
  const mode = !s ? 'terminal' : s.toolType === 'terminal' ? 'terminal' : s.inputMode;
  const tabId = s ? viewTab(s, mode) : null;
  const key = logKey(id, tabId);
  const [view, chooseView] = useViewChoice(id);
  const terminalView = view === 'terminal' && !!s && s.toolType === 'terminal';
  useEffect(() => {
    setScope(id);
    for (const k of [...state.logs.keys()]) if (!k.startsWith(id + '|')) state.logs.delete(k);
    loadApprovals(id);
  }, [id]);
  useEffect(() => {
    const log = getLog(key);
    if (s && !log.loaded && !log.loading) loadNewest(id, tabId);
  }, [key, !!s]);
  const log = getLog(key);
  useEffect(() => {
    // Only an owner's pages keep a copy (see logcache.js): a view-only link leaves nothing.
    if (s && state.role === 'owner' && log.loaded && !log.cached) cacheLog(key, id, log.entries);
  }, [key, log.version, state.role]);
  if (!s) {
    return html`<header class="topbar"><button type="button" class="icon-btn" aria-label="Back to sessions"
      onClick=${() => navigate('')}><${Icon} name="back" /></button><h1 class="title">Session</h1><${ConnPill} /></header>
      <main id="main" class="empty">${state.conn.everConnected ? 'This session does not exist (any more).' : 'Loading…'}</main>`;
  }
  return html`
    <header class="topbar session-top">
      <button type="button" class="icon-btn" aria-label="Back to sessions" onClick=${() => navigate('')}>
        <${Icon} name="back" /></button>
      <div class="title-box">
        <h1 class="title">${s.name}</h1>
        <div class="subtitle"><${SessionState} s=${s} />
          <span class="muted">· ${TOOL_LABELS[s.toolType] || s.toolType}${s.tmux ? ` · tmux ${s.tmux}` : ''} · ${shortPath(s.shellCwd || s.cwd)}</span></div>
      </div>
      <${ConnPill} />
      ${s.toolType === 'terminal' ? html`<button type="button" class="icon-btn view-toggle" aria-label="Terminal view"
        title="Terminal view" aria-pressed=${terminalView} onClick=${() => chooseView(terminalView ? 'log' : 'terminal')}>
        <${Icon} name="terminal" /></button>` : null}
      ${isViewer() ? null : html`<button type="button" class="icon-btn" aria-label="Session actions"
        onClick=${() => { state.sheet = { kind: 'actions', id }; changed(); }}><${Icon} name="more" /></button>`}
    </header>
    ${s.toolType !== 'terminal' ? html`<${TabBar} s=${s} />` : null}
    ${!s.isLive && !serverUnreachable() ? html`<div class="banner banner-warn" role="status">Remote control is off: this session refuses commands from here.
      ${isViewer() ? null : html`<button type="button" class="btn btn-small" onClick=${() => post(`session/${id}/live`).catch((e) => toast(e.message, 'error'))}>Turn remote control on</button>`}</div>` : null}
    ${terminalView ? html`<${TerminalView} s=${s} readOnly=${isViewer()} />`
      : html`<${LogView} key=${key} s=${s} logKeyName=${key} tabId=${tabId} mode=${mode} />
        <${QueueBanner} sessionId=${id} />`}
    ${terminalView ? null : html`<${ApprovalCard} s=${s} />`}
    ${isViewer() ? html`<footer class="banner viewonly" role="note">View only: this link can watch, not act.</footer>`
      : terminalView ? null : html`<${CommandBar} s=${s} mode=${mode} tabId=${s.activeTabId} />`}`;
}

function TabBar({ s }) {
  const act = (message) => request({ sessionId: s.id, ...message }).catch((e) => toast(e.message, 'error'));
  return html`<nav class="tabbar" aria-label="AI tabs">
    <div class="tabs" role="tablist">
      ${s.aiTabs.map((t, i) => {
        const active = t.id === s.activeTabId;
        return html`<button type="button" role="tab" key=${t.id} aria-selected=${active}
          class=${'tab' + (active ? ' tab-active' : '') + (t.hasUnread ? ' tab-unread' : '')}
          data-tab-id=${t.id} disabled=${isViewer()}
          onClick=${() => (active ? (state.sheet = { kind: 'tab', id: s.id, tabId: t.id }, changed())
            : act({ type: 'select_tab', tabId: t.id }))}>
          ${t.starred ? html`<span aria-hidden="true">★ </span>` : null}${t.name || `Tab ${i + 1}`}
          ${t.state === 'busy' ? html`<span class="tab-busy" aria-label="busy"></span>` : null}
          ${t.state === 'waiting_input' ? html`<span class="tab-asks" aria-label="waiting for you"></span>` : null}
        </button>`;
      })}
    </div>
    ${isViewer() ? null : html`<button type="button" class="icon-btn" aria-label="New tab" onClick=${() => act({ type: 'new_tab' })}>
      <${Icon} name="plus" /></button>`}
  </nav>
  <${TabChips} s=${s} />`;
}

/** Change the active tab's permission mode or model (from its next turn). */
function patchTab(s, tabId, changes) {
  return patch(`session/${s.id}/tabs/${tabId}`, changes).catch((e) => toast(e.message, 'error'));
}

/** The active tab's permission mode and model, as chips under the tabs (for agents that take them). */
function TabChips({ s }) {
  const agent = state.agents.get(s.toolType);
  const tab = s.aiTabs.find((t) => t.id === s.activeTabId);
  if (!agent || !tab || (!agent.permissionModes.length && !agent.canChooseModel)) return null;
  const mode = tab.permissionMode || '';
  const model = tab.model || agent.model;
  return html`<div class="tabchips" role="toolbar" aria-label="Tab settings">
    ${agent.permissionModes.length ? html`<label class=${'chip chip-select' + (mode ? ' chip-set' : '')}>
      <span class="muted">Mode</span>
      <select aria-label="Permission mode" value=${mode} disabled=${isViewer()}
        onChange=${(e) => patchTab(s, tab.id, { permissionMode: e.target.value || null })}>
        <option value="">${agent.permissionMode ? `${agent.permissionMode} (default)` : 'default (asks)'}</option>
        ${agent.permissionModes.map((m) => html`<option key=${m} value=${m}>${m}</option>`)}
      </select></label>` : null}
    ${agent.canChooseModel ? html`<button type="button" class=${'chip' + (tab.model ? ' chip-set' : '')}
      aria-label=${'Model: ' + (model || 'the agent\'s default')} disabled=${isViewer()}
      onClick=${() => { state.sheet = { kind: 'model', id: s.id, tabId: tab.id }; changed(); }}>
      <span class="muted">Model</span> ${model || 'default'}</button>` : null}
  </div>`;
}

/** A sheet that edits one field of a tab: its session, the tab, the value typed, and close. */
function useTabField(id, tabId, field) {
  const s = state.sessions.get(id);
  const tab = s && s.aiTabs.find((t) => t.id === tabId);
  const [value, setValue] = useState(tab ? tab[field] || '' : '');
  const close = () => { state.sheet = null; changed(); };
  return [s, tab, value, setValue, close];
}

export function ModelSheet({ id, tabId }) {
  const [s, tab, model, setModel, close] = useTabField(id, tabId, 'model');
  if (!tab) { close(); return null; }
  const agent = state.agents.get(s.toolType);
  const choose = (value) => patchTab(s, tabId, { model: value }).then(close);
  return html`<${Sheet} title="Model" onClose=${close}>
    <form class="form" onSubmit=${(e) => { e.preventDefault(); choose(model.trim() || null); }}>
      <label>Model for this tab's next turns<input name="model" value=${model} autocomplete="off"
        autocapitalize="off" spellcheck="false" onInput=${(e) => setModel(e.target.value)}
        placeholder=${(agent && agent.model) || 'e.g. opus, sonnet, gpt-5'} /></label>
      <div class="row-buttons">
        <button type="button" class="btn" onClick=${() => choose(null)}>Agent's default</button>
        <button type="submit" class="btn btn-primary">Use this model</button>
      </div>
    </form></${Sheet}>`;
}

export function TabSheet({ id, tabId }) {
  const [s, tab, name, setName, close] = useTabField(id, tabId, 'name');
  if (!tab) { close(); return null; }
  const act = (message) => request({ sessionId: id, tabId, ...message })
    .then(close).catch((e) => toast(e.message, 'error'));
  return html`<${Sheet} title="Tab" onClose=${close}>
    <form class="form" onSubmit=${(e) => { e.preventDefault(); act({ type: 'rename_tab', ...(name.trim() ? { name: name.trim() } : {}) }); }}>
      <label>Tab name<input name="tabName" value=${name} onInput=${(e) => setName(e.target.value)} placeholder="Unnamed" /></label>
      <button type="submit" class="btn btn-primary">Rename</button>
    </form>
    <div class="menu">
      <button type="button" class="menu-item menu-danger" disabled=${s.aiTabs.length < 2}
        onClick=${() => act({ type: 'close_tab' })}><${Icon} name="close" /> Close tab</button>
    </div></${Sheet}>`;
}

const blockKind = (e) => (e.source === 'stdout' || e.source === 'stderr' ? 'term' : e.source);
const runs = (kind) => kind === 'term' || kind === 'ai';

/** Group entries [start, end) into blocks: terminal output runs, AI answers, single others. A
 * block is keyed by the first entry of its run in the whole log, so moving the window's start
 * updates the block in place instead of building it again. */
function blocks(entries, start, end) {
  const out = [];
  for (let i = start; i < end; i += 1) {
    const e = entries[i];
    const kind = blockKind(e);
    const last = out[out.length - 1];
    if (last && runs(kind) && last.kind === kind) last.entries.push(e);
    else out.push({ kind, entries: [e], key: e.id });
  }
  if (out.length && runs(out[0].kind)) {
    let first = start;
    while (first > 0 && blockKind(entries[first - 1]) === out[0].kind) first -= 1;
    out[0].key = entries[first].id;
  }
  return out;
}

function Block({ b }) {
  const first = b.entries[0];
  switch (b.kind) {
    case 'term':
      // A command that printed nothing but the echo of ^C: no empty box (its "Interrupted"
      // note follows).
      if (b.entries.every((e) => !stripAnsi(e.text).trim())) return null;
      return html`<pre class="term" data-source="stdout">${b.entries.map((e) => html`<span key=${e.id}
        data-entry-id=${e.id} dangerouslySetInnerHTML=${{ __html: ansiHtml(e.text, e.id) }} />`)}</pre>`;
    case 'ai': {
      // Streamed chunks end with a newline and join as they are; whole messages get a blank
      // line between them so their Markdown does not run together.
      const text = b.entries.reduce((acc, e) => (!acc || acc.endsWith('\n') ? acc + e.text : acc + '\n\n' + e.text), '');
      const cacheKey = b.entries.map((e) => e.id + ':' + e.text.length).join(',');
      return html`<div class="msg msg-ai markdown" data-source="ai" data-entry-id=${first.id}
        dangerouslySetInnerHTML=${{ __html: markdownHtml(text, cacheKey) }} />`;
    }
    case 'user':
      return html`<div class="msg msg-user" data-source="user" data-entry-id=${first.id}>
        <span class="prompt" aria-hidden="true">❯</span><span class="user-text">${first.text}</span></div>`;
    case 'tool':
      return html`<${ToolEntry} e=${first} />`;
    case 'thinking': {
      const line = first.text.split('\n')[0].slice(0, 80);
      return html`<details class="msg msg-thinking" data-source="thinking" data-entry-id=${first.id}>
        <summary>Thinking: <span class="muted">${line}</span></summary>
        <pre class="term">${first.text}</pre></details>`;
    }
    case 'plan':
      // An agent's plan (ACP): a Markdown checklist, sanitised like the agent's answers.
      return html`<div class="msg msg-plan markdown" data-source="plan" data-entry-id=${first.id}
        dangerouslySetInnerHTML=${{ __html: markdownHtml(planMarkdown(first.text)) }} />`;
    case 'error':
      return html`<div class="msg msg-error" role="note" data-source="error" data-entry-id=${first.id}>${first.text}</div>`;
    default:
      return html`<div class="msg msg-system" data-source=${first.source} data-entry-id=${first.id}>${first.text}</div>`;
  }
}

const PLAN_MARKS = { ' ': '☐', x: '☑', X: '☑', '~': '◐' };

/** A plan's checklist items (`- [x] done`, `- [~] doing`, `- [ ] to do`) with their state as a
 * glyph: the sanitiser drops Markdown's task-list checkboxes (no <input> from an agent). */
function planMarkdown(text) {
  return text.replace(/^(\s*[-*+] )\[([ xX~])\] /gm, (_, item, mark) => `${item}${PLAN_MARKS[mark]} `);
}

/** What a tool was called with: the command itself, else its arguments as JSON. */
function toolInput(e) {
  const input = e.input;
  if (input && typeof input === 'object' && typeof input.command === 'string') return input.command;
  if (typeof input === 'string') return input;
  return input === undefined || input === null ? '' : JSON.stringify(input, null, 2);
}

/** A tool call: one line (the call and its outcome), expanding to the command and its output,
 * or to the file change as a coloured diff. */
function ToolEntry({ e }) {
  const [call, outcome] = e.text.split('\n');
  const input = e.diff ? '' : toolInput(e);
  return html`<details class=${'msg msg-tool' + (e.isError ? ' tool-failed' : '')} data-source="tool" data-entry-id=${e.id}>
    <summary><span class="tool-call">${call}</span>${outcome ? html` <span class="muted tool-outcome">${outcome}</span>` : null}</summary>
    ${e.diff ? html`<${DiffView} diff=${e.diff} label=${'Changes by ' + (e.toolName || 'the tool')} />` : null}
    ${input ? html`<pre class="term tool-input" aria-label="Input">${input}</pre>` : null}
    ${typeof e.result === 'string' ? html`<pre class=${'term tool-result' + (e.isError ? ' tool-error' : '')}
      aria-label="Output">${e.result || '(no output)'}</pre>` : null}
    ${e.truncated ? html`<p class="muted">Cut at 64 KiB.</p>` : null}
    ${e.toolName === undefined ? html`<pre class="term">${e.text}</pre>` : null}
  </details>`;
}

function LogView({ s, logKeyName, tabId, mode }) {
  const log = getLog(logKeyName);
  const entries = log.entries;
  const ref = useRef(null);
  const stick = useRef(true);  // following the tail
  const frame = useRef(null);  // {firstId, lastId}: the window while the user reads back
  const anchor = useRef(null); // {id, top}: an entry to keep in place across the next render
  const [, redraw] = useState(0);

  /** The entries [start, end) in the DOM: the tail, or the frame the user reads back in. */
  const shown = () => {
    if (stick.current || !frame.current) return tailWindow(log.entries);
    const { firstId, lastId } = frame.current;
    const last = indexOfId(log.entries, lastId);
    return { start: indexOfId(log.entries, firstId), end: log.entries[last]?.id === lastId ? last + 1 : last };
  };
  const { start, end } = shown();
  const unseen = stick.current ? 0 : entries.length - end;

  /** Remember the first entry on screen, to put it back where it was after the next render. */
  const keepPlace = () => {
    const top = ref.current.getBoundingClientRect().top;
    for (const node of ref.current.querySelectorAll('[data-entry-id]')) {
      const rect = node.getBoundingClientRect();
      if (rect.bottom > top) {
        anchor.current = { id: node.dataset.entryId, top: rect.top };
        return;
      }
    }
  };

  const setWindow = (range) => {
    keepPlace();
    frame.current = { firstId: log.entries[range.start].id, lastId: log.entries[range.end - 1].id };
    redraw((n) => n + 1);
  };

  const follow = () => {
    stick.current = true;
    frame.current = null;
    redraw((n) => n + 1);
  };

  useLayoutEffect(() => {
    const el = ref.current;
    const mark = anchor.current;
    anchor.current = null;
    if (stick.current) {
      el.scrollTop = el.scrollHeight;
    } else if (mark) {
      const node = el.querySelector(`[data-entry-id="${mark.id}"]`);
      if (node) el.scrollTop += node.getBoundingClientRect().top - mark.top;
    }
  });

  // While following a long log, forget what is far above the window (paging brings it back).
  useEffect(() => {
    if (stick.current) dropOldest(logKeyName, forgettable(entries, start));
  });

  /** Scrolled to the top of the window: show more of what is held, or fetch an older page. */
  const readBack = () => {
    const current = shown();
    if (current.start > 0) {
      const top = growUp(log.entries, current.start, WINDOW_CHARS);
      setWindow(capWindow(log.entries, top, current.end, 'bottom'));
    } else if (log.hasMore && !log.loading && log.entries.length) {
      loadOlder(s.id, tabId).then(() => { if (!stick.current && shown().start > 0) readBack(); });
    }
  };

  const onScroll = () => {
    const el = ref.current;
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
    const current = shown();
    if (atBottom && current.end >= log.entries.length) {
      if (!stick.current) follow();
    } else if (atBottom) {
      setWindow(capWindow(log.entries, current.start, growDown(log.entries, current.end, WINDOW_CHARS), 'top'));
    } else if (stick.current && current.end > current.start) {
      stick.current = false;
      frame.current = { firstId: log.entries[current.start].id, lastId: log.entries[current.end - 1].id };
    }
    if (el.scrollTop < 200) readBack(); // also when a short log does not fill the screen
  };

  const onClick = async (e) => {
    const button = e.target.closest('.copy-btn');
    if (!button) return;
    const pre = button.parentElement.querySelector('pre');
    const ok = await copyText(pre ? pre.innerText : '');
    button.textContent = ok ? 'Copied' : 'Copy failed';
    setTimeout(() => { button.textContent = 'Copy'; }, 1500);
  };

  // Keep following the tail when the keyboard or the window resizes the log.
  useEffect(() => {
    const el = ref.current;
    const observer = new ResizeObserver(() => { if (stick.current) el.scrollTop = el.scrollHeight; });
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  const empty = log.loaded && !entries.length;
  const older = log.hasMore || start > 0;
  return html`<main id="main" class="log" ref=${ref} onScroll=${onScroll} onClick=${onClick}
      aria-label=${mode === 'ai' ? 'Conversation' : 'Terminal output'} data-log=${logKeyName} tabindex="-1">
    ${log.cached ? html`<div class="log-more cached-note" role="status">Cached copy from this device: waiting for the server</div>` : null}
    ${older ? html`<div class="log-more">${log.loading ? 'Loading older output…' : 'Scroll up for older output'}</div>` : null}
    ${!log.loaded && log.loading ? html`<div class="log-more">Loading…</div>` : null}
    ${!log.loaded && !log.loading && log.failed ? html`<div class="empty" role="status">Output not loaded: ${log.failed}</div>` : null}
    ${empty ? html`<div class="empty">${mode === 'ai' ? 'Ask the agent something below.' : 'Run a command below.'}</div>` : null}
    ${blocks(entries, start, end).map((b) => html`<${Block} key=${b.key} b=${b} />`)}
    ${s.state === 'waiting_input' ? html`<div class="waiting" role="status">${openApprovals(s.id).length
      ? 'The agent is waiting for your answer below.' : 'Waiting for your input — type it below.'}</div>` : null}
    ${unseen > 0 ? html`<button type="button" class="jump" onClick=${follow}>
      <${Icon} name="down" size=${16} /> Jump to latest (${unseen})</button>` : null}
  </main>`;
}

const KEYS = [
  ['Esc', 'Escape', 'Escape'], ['Tab', 'Tab', 'Tab'], ['⇧Tab', 'S-Tab', 'Shift+Tab'],
  ['^C', 'C-c', 'Control C'], ['^D', 'C-d', 'Control D'], ['←', 'Left', 'Left arrow'],
  ['↑', 'Up', 'Up arrow'], ['↓', 'Down', 'Down arrow'], ['→', 'Right', 'Right arrow'],
  ['⏎', 'Enter', 'Enter'],
];

async function sendKey(sessionId, key) {
  try {
    await sendKeys(sessionId, [key]);
  } catch (err) {
    toast(err.status === 409 ? 'Nothing is running' : err.message, 'error');
  }
}

/** The slash commands the tab's agent advertised (another tab's until this one has run a
 * turn), then the config file's own commands. */
function slashCommands(s, tabId) {
  const tab = s.aiTabs.find((t) => t.id === tabId);
  const advertised = (tab && tab.slashCommands) || (s.aiTabs.find((t) => t.slashCommands) || {}).slashCommands || [];
  const agent = TOOL_LABELS[s.toolType] || s.toolType;
  return [...advertised.map((name) => ({ command: '/' + name, description: agent })), ...state.commands];
}

function CommandBar({ s, mode, tabId }) {
  const draftKey = 'draft.' + s.id + '.' + mode;
  const [text, setText] = useState(() => load(draftKey, ''));
  const [focused, setFocused] = useState(false);
  const [newlines, setNewlines] = useState(false);
  const area = useRef(null);
  const busy = s.state === 'busy' || s.state === 'waiting_input';
  // An agent waits for an approval (answered in the card, not here): the shell does not wait
  // for typed input, and the phone's keyboard would cover the card.
  const agentAsks = s.aiTabs.some((t) => t.state === 'waiting_input');
  const typedAnswer = s.state === 'waiting_input' && !agentAsks;
  // The terminal does not echo (a password prompt): what is typed is never kept anywhere.
  const secret = mode === 'terminal' && s.echo === false;

  useEffect(() => { setText(secret ? '' : load(draftKey, '')); }, [draftKey, secret]);
  useLayoutEffect(() => {
    const el = area.current;
    if (secret) return;
    el.style.height = 'auto';
    el.style.height = Math.min(el.scrollHeight, 160) + 'px';
  }, [text, secret]);
  useEffect(() => {
    if (typedAnswer) area.current.focus({ preventScroll: true });
  }, [typedAnswer]);

  const update = (value) => {
    setText(value);
    if (!secret) save(draftKey, value);
  };
  const submitSecret = () => {
    sendSecret(s.id, text).then(() => setText('')).catch((err) => toast(`Not sent: ${err.message}`, 'error'));
  };
  const submit = () => {
    const command = text;
    if (!command.trim()) return;
    if (secret) { submitSecret(); return; }
    const message = { sessionId: s.id, command, inputMode: mode };
    if (mode === 'ai') message.tabId = tabId;
    if (!enqueue(message)) return;
    rememberCommand(s.id, command);
    update('');
    area.current.focus({ preventScroll: true });
  };
  const switchMode = () => {
    request({ type: 'switch_mode', sessionId: s.id, mode: mode === 'ai' ? 'terminal' : 'ai' })
      .catch((e) => toast(e.message, 'error'));
  };
  // Enter sends, as the phone keyboard's "send" key promises; a new line comes from Shift+Enter
  // (hardware keyboards) or from the visible toggle, which makes Enter insert one.
  const onKeyDown = (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && (secret || !newlines)) {
      e.preventDefault();
      submit();
    }
  };

  const slash = mode === 'ai' && /^\/\S*$/.test(text)
    ? slashCommands(s, tabId).filter((c) => c.command.startsWith(text)).slice(0, 8) : [];
  const recent = !text && !secret ? recentCommands(s.id).slice(0, 8) : [];

  return html`<footer class="commandbar" aria-label="Command bar">
    ${slash.length ? html`<ul class="suggest" role="listbox" aria-label="Slash commands">
      ${slash.map((c) => html`<li key=${c.command}><button type="button" role="option"
        onClick=${() => { update(c.command + ' '); area.current.focus(); }}>
        <b>${c.command}</b> <span class="muted">${c.description}</span></button></li>`)}</ul>` : null}
    ${recent.length && focused ? html`<div class="chips" aria-label="Recent commands">
      ${recent.map((c) => html`<button type="button" class="chip" key=${c.text}
        onMouseDown=${(e) => e.preventDefault()}
        onClick=${() => { update(c.text); area.current.focus(); }}>${c.text.split('\n')[0].slice(0, 40)}</button>`)}
      </div>` : null}
    ${mode === 'terminal' ? html`<div class="keybar" role="toolbar" aria-label="Terminal keys">
      ${KEYS.map(([label, key, name]) => html`<button type="button" class="key" key=${key}
        aria-label=${name} onMouseDown=${(e) => e.preventDefault()} onClick=${() => sendKey(s.id, key)}>${label}</button>`)}
      </div>` : null}
    <div class="bar-row">
      ${s.toolType !== 'terminal' ? html`<button type="button" class=${'mode-toggle mode-' + mode}
        aria-label=${mode === 'ai' ? 'AI mode: switch to terminal' : 'Terminal mode: switch to AI'}
        onClick=${switchMode}><${Icon} name=${mode === 'ai' ? 'sparkle' : 'terminal'} size=${16} />
        <span aria-hidden="true">${mode === 'ai' ? 'AI' : 'Shell'}</span></button>` : null}
      <button type="button" class="icon-btn" aria-label="Command history"
        onClick=${() => { state.sheet = { kind: 'recent', id: s.id, insert: update }; changed(); }}>
        <${Icon} name="history" /></button>
      <label class="sr-only" for="command-input">${secret ? 'Secret input' : mode === 'ai' ? 'Message to the agent' : 'Command'}</label>
      <${secret ? 'input' : 'textarea'} id="command-input" ref=${area} value=${text}
        type=${secret ? 'password' : undefined} rows=${secret ? undefined : 1}
        placeholder=${secret ? 'Secret input: not shown, not kept' : typedAnswer ? 'Type your answer…'
          : mode === 'ai' ? 'Ask the agent…' : 'Type a command…'}
        autocapitalize="off" autocomplete="off" autocorrect="off" spellcheck=${mode === 'ai'}
        enterkeyhint=${newlines && !secret ? 'enter' : 'send'}
        onInput=${(e) => update(e.target.value)} onKeyDown=${onKeyDown}
        onFocus=${() => setFocused(true)} onBlur=${() => setTimeout(() => setFocused(false), 150)} />
      ${secret ? null : html`<button type="button" class="icon-btn btn-newline" aria-pressed=${newlines}
        aria-label="Enter adds a new line" title="Enter adds a new line (Shift+Enter always does)"
        onMouseDown=${(e) => e.preventDefault()} onClick=${() => setNewlines(!newlines)}>
        <${Icon} name="newline" /></button>`}
      ${busy ? html`<button type="button" class="icon-btn btn-interrupt" aria-label="Interrupt"
        onClick=${() => interruptSession(s.id)}><${Icon} name="stop" /></button>` : null}
      <button type="button" class="icon-btn btn-send" aria-label="Send" disabled=${!text.trim()}
        onMouseDown=${(e) => e.preventDefault()} onClick=${submit}><${Icon} name="send" /></button>
    </div>
  </footer>`;
}

export function RecentSheet({ id, insert }) {
  const [q, setQ] = useState('');
  const close = () => { state.sheet = null; changed(); };
  const items = recentCommands(id).filter((c) => c.text.toLowerCase().includes(q.toLowerCase()));
  return html`<${Sheet} title="Command history" onClose=${close}>
    <label class="search"><${Icon} name="search" size=${18} /><span class="sr-only">Search commands</span>
      <input type="search" placeholder="Search" value=${q} onInput=${(e) => setQ(e.target.value)} /></label>
    ${items.length ? html`<ul class="list">${items.map((c) => html`<li key=${c.text}>
      <button type="button" class="list-item" onClick=${() => { insert(c.text); close(); }}>
        <code>${c.text}</code></button></li>`)}</ul>` : html`<p class="empty">No commands yet.</p>`}
  </${Sheet}>`;
}
