// A unified diff as the phone shows it: one row per line with the old and new line numbers,
// added lines green, removed red, hunk headers dimmed. Built from text nodes only: whatever
// an agent put in a file stays text.

import { html } from './ui.js';

const HUNK = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/;

/** The rows of a unified diff: {kind, old, new, text}, kind one of file, hunk, add, del, same. */
export function diffRows(diff) {
  const rows = [];
  let oldLine = 0;
  let newLine = 0;
  const lines = (diff || '').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (const text of lines) {
    const hunk = HUNK.exec(text);
    if (hunk) {
      oldLine = Number(hunk[1]);
      newLine = Number(hunk[2]);
      rows.push({ kind: 'hunk', old: '', new: '', text });
    } else if (text.startsWith('--- ') || text.startsWith('+++ ')) {
      rows.push({ kind: 'file', old: '', new: '', text });
    } else if (text.startsWith('+')) {
      rows.push({ kind: 'add', old: '', new: newLine++, text });
    } else if (text.startsWith('-')) {
      rows.push({ kind: 'del', old: oldLine++, new: '', text });
    } else if (text.startsWith('\\')) { // "\ No newline at end of file"
      rows.push({ kind: 'file', old: '', new: '', text });
    } else {
      rows.push({ kind: 'same', old: oldLine++, new: newLine++, text });
    }
  }
  return rows;
}

export function DiffView({ diff, label = 'Diff' }) {
  return html`<div class="diff" role="group" aria-label=${label} tabindex="0">
    ${diffRows(diff).map((row, i) => html`<div key=${i} class=${'diff-row diff-' + row.kind}>
      <span class="diff-ln" aria-hidden="true">${row.old}</span><span class="diff-ln" aria-hidden="true">${row.new}</span><code class="diff-text">${row.text}</code></div>`)}
  </div>`;
}
