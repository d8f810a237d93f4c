// Text rendering: ANSI-coloured terminal output and Markdown, both sanitised (cached per entry).

import { marked } from '../vendor/marked/marked.mjs';
import { ansiToHtml } from './ansi.js';
import { sanitisedFragment, sanitisedHtml } from './sanitise.js';

const cache = new Map();
const CACHE_MAX = 5000;

function remember(key, value) {
  if (cache.size > CACHE_MAX) cache.clear();
  cache.set(key, value);
  return value;
}

/** Terminal text → HTML (escaped, SGR attributes and colours as classes). */
export function ansiHtml(text, key) {
  if (key !== undefined && cache.has('a' + key)) return cache.get('a' + key);
  const html = sanitisedHtml(ansiToHtml(text));
  return key === undefined ? html : remember('a' + key, html);
}

const ANSI_RE = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;
export function stripAnsi(text) {
  return (text || '').replace(ANSI_RE, '');
}

marked.setOptions({ gfm: true, breaks: false });

/** Markdown → sanitised HTML; every code block gets a copy button. */
export function markdownHtml(text, key) {
  if (key !== undefined && cache.has('m' + key)) return cache.get('m' + key);
  let html;
  try {
    html = marked.parse(text || '');
  } catch (err) {
    html = '<pre></pre>';
  }
  const clean = sanitisedFragment(html);
  for (const pre of clean.querySelectorAll('pre')) {
    const wrap = document.createElement('div');
    wrap.className = 'codeblock';
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'copy-btn';
    button.setAttribute('aria-label', 'Copy code');
    button.textContent = 'Copy';
    pre.replaceWith(wrap);
    wrap.append(button, pre);
  }
  const box = document.createElement('div');
  box.append(clean);
  return key === undefined ? box.innerHTML : remember('m' + key, box.innerHTML);
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (err) {
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.style.position = 'fixed';
    area.style.opacity = '0';
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
    area.remove();
    return ok;
  }
}

export function timeAgo(ms, now = Date.now()) {
  if (!ms) return '';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 10) return 'just now';
  if (s < 60) return `${s}s ago`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m}m ago`;
  const h = Math.round(m / 60);
  if (h < 24) return `${h}h ago`;
  return `${Math.round(h / 24)}d ago`;
}

export const STATE_LABELS = {
  idle: 'Idle',
  failed: 'Failed',
  busy: 'Busy',
  connecting: 'Connecting',
  waiting_input: 'Waiting for input',
  error: 'Error',
  unreachable: 'Server unreachable',
};

export const TOOL_LABELS = {
  terminal: 'Terminal',
  'claude-code': 'Claude Code',
  codex: 'Codex',
  'gemini-cli': 'Gemini CLI',
  aider: 'Aider',
  opencode: 'OpenCode',
};

export function shortPath(path) {
  if (!path) return '';
  const parts = path.split('/').filter(Boolean);
  return parts.length > 2 ? '…/' + parts.slice(-2).join('/') : path;
}

export function formatCost(stats) {
  const cost = stats && typeof stats.totalCostUsd === 'number' ? stats.totalCostUsd : null;
  return cost === null ? '' : `$${cost.toFixed(cost < 1 ? 3 : 2)}`;
}
