// The new-session folder picker: recent folders (the sessions' own), and a browser of the
// sub-folders inside the home folder (GET dirs). Folder names are the file system's text:
// always rendered as text.

import { useEffect, useState } from '../vendor/preact/hooks.mjs';
import { get } from './api.js';
import { state } from './store.js';
import { Icon, html } from './ui.js';

const RECENT_MAX = 6;

/** Folders of the known sessions, the last used first, without repeats. */
function recentFolders(last) {
  const sessions = [...state.sessions.values()].sort((a, b) => (b.createdAt || 0) - (a.createdAt || 0));
  return [...new Set([last, ...sessions.map((s) => s.cwd)].filter(Boolean))].slice(0, RECENT_MAX);
}

export function FolderPicker({ last, onPick }) {
  const [browsing, setBrowsing] = useState(null); // the path being listed ('' for home), or null
  const recent = recentFolders(last);
  return html`<div class="folder-picker">
    ${recent.length ? html`<div class="chips" role="group" aria-label="Recent folders">
      ${recent.map((path) => html`<button type="button" class="chip" key=${path} title=${path}
        onClick=${() => onPick(path)}>${path}</button>`)}</div>` : null}
    ${browsing === null
      ? html`<button type="button" class="btn" onClick=${() => setBrowsing('')}>Browse folders…</button>`
      : html`<${FolderBrowser} path=${browsing} onOpen=${setBrowsing}
          onPick=${(path) => { onPick(path); setBrowsing(null); }} onClose=${() => setBrowsing(null)} />`}
  </div>`;
}

function FolderBrowser({ path, onOpen, onPick, onClose }) {
  const [listing, setListing] = useState(null);
  const [error, setError] = useState('');
  useEffect(() => {
    let live = true;
    setError('');
    get('dirs' + (path ? '?path=' + encodeURIComponent(path) : ''))
      .then((data) => { if (live) setListing(data); }, (err) => { if (live) setError(err.message); });
    return () => { live = false; };
  }, [path]);
  return html`<div class="folder-browser" role="group" aria-label="Browse folders">
    <div class="folder-browser-head">
      <button type="button" class="icon-btn" aria-label="Parent folder"
        disabled=${!listing || !listing.parent} onClick=${() => onOpen(listing.parent)}>
        <${Icon} name="back" /></button>
      <code class="folder-current">${listing ? listing.path : path || '~'}</code>
      <button type="button" class="icon-btn" aria-label="Close the folder browser" onClick=${onClose}>
        <${Icon} name="close" /></button>
    </div>
    ${error ? html`<p class="form-error" role="alert">${error}</p>` : null}
    ${listing ? html`<ul class="list folder-list" aria-label="Sub-folders">
      ${listing.folders.map((f) => html`<li key=${f.path}><button type="button" class="list-item"
        onClick=${() => onOpen(f.path)}>${f.name}</button></li>`)}
      ${listing.folders.length ? null : html`<li class="empty">No sub-folders</li>`}
      ${listing.truncated ? html`<li class="empty">Only the first ${listing.count} are shown</li>` : null}
    </ul>
    <button type="button" class="btn btn-primary" onClick=${() => onPick(listing.path)}>
      Use this folder</button>` : null}
  </div>`;
}
