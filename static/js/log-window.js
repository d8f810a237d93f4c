// The part of a long log that the log view puts in the DOM: a window of entries of about
// WINDOW_CHARS characters (many screens; an entry is at most ~16 KiB), not the whole log, so a
// flood of output or a session with a long log costs the same as a short one. Indices are into
// `log.entries` (sorted by id); the window is [start, end).

export const WINDOW_CHARS = 16000; // ~2,000 short lines: layout stays well under a frame
export const MAX_WINDOW_CHARS = 4 * WINDOW_CHARS; // scrolling grows the window up to this
export const KEEP_ABOVE_CHARS = 512 * 1024; // held in memory above a tail window

const ENTRY_OVERHEAD = 40; // a one-line entry still takes a line

export function entryChars(entry) {
  return entry.text.length + ENTRY_OVERHEAD;
}

/** Consecutive entries of an AI answer render as one Markdown block: never cut one. */
function joinsPrevious(entries, index) {
  return index > 0 && entries[index].source === 'ai' && entries[index - 1].source === 'ai';
}

/** Move `start` back by about `chars` (at least one entry), to the start of an AI answer. */
export function growUp(entries, start, chars) {
  let used = 0;
  let i = start;
  while (i > 0 && (i === start || used + entryChars(entries[i - 1]) <= chars)) {
    i -= 1;
    used += entryChars(entries[i]);
  }
  while (joinsPrevious(entries, i)) i -= 1;
  return i;
}

/** Move `end` on by about `chars` (at least one entry). */
export function growDown(entries, end, chars) {
  let used = 0;
  let i = end;
  while (i < entries.length && (i === end || used + entryChars(entries[i]) <= chars)) {
    used += entryChars(entries[i]);
    i += 1;
  }
  return i;
}

/** The newest entries: the window while the view follows the tail. */
export function tailWindow(entries) {
  const end = entries.length;
  return { start: end ? growUp(entries, end, WINDOW_CHARS) : 0, end };
}

export function windowChars(entries, start, end) {
  let chars = 0;
  for (let i = start; i < end; i += 1) chars += entryChars(entries[i]);
  return chars;
}

/** Shrink [start, end) to MAX_WINDOW_CHARS by dropping entries from the side `from`. */
export function capWindow(entries, start, end, from) {
  let chars = windowChars(entries, start, end);
  while (chars > MAX_WINDOW_CHARS && end - start > 1) {
    if (from === 'top') { chars -= entryChars(entries[start]); start += 1; }
    else { end -= 1; chars -= entryChars(entries[end]); }
  }
  while (from === 'top' && joinsPrevious(entries, start) && end - start > 1) start += 1;
  return { start, end };
}

/** How many of the oldest entries can be forgotten while `start` leads the window (they are
 * fetched again when the user scrolls up to them). */
export function forgettable(entries, start) {
  let kept = 0;
  let i = start;
  while (i > 0 && kept < KEEP_ABOVE_CHARS) {
    i -= 1;
    kept += entryChars(entries[i]);
  }
  return i;
}

/** The index of the entry with `id`, or where it would be (entries are sorted by id). */
export function indexOfId(entries, id) {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (entries[mid].id < id) low = mid + 1;
    else high = mid;
  }
  return low;
}
