// The terminal view's key bar: the keys a phone keyboard lacks, as the bytes a terminal sends,
// and the sticky Ctrl / Alt modifiers that apply to the next key (from the bar or typed).

const CSI = '\x1b[';

// label, accessible name, the key's id in `sequence()`
export const TERMINAL_KEYS = [
  ['Esc', 'Escape', 'Escape'], ['Tab', 'Tab', 'Tab'], ['⇧Tab', 'Shift+Tab', 'BackTab'],
  ['^C', 'Control C', 'C-c'], ['^D', 'Control D', 'C-d'], ['←', 'Left arrow', 'Left'],
  ['↑', 'Up arrow', 'Up'], ['↓', 'Down arrow', 'Down'], ['→', 'Right arrow', 'Right'],
  ['PgUp', 'Page up', 'PageUp'], ['PgDn', 'Page down', 'PageDown'], ['Home', 'Home', 'Home'],
  ['End', 'End', 'End'], ['⏎', 'Enter', 'Enter'],
];

const CURSOR = { Up: 'A', Down: 'B', Right: 'C', Left: 'D', Home: 'H', End: 'F' };
const TILDE = { PageUp: 5, PageDown: 6 };
const PLAIN = { Escape: '\x1b', Tab: '\t', BackTab: CSI + 'Z', Enter: '\r', 'C-c': '\x03', 'C-d': '\x04' };

/** xterm's modifier parameter: 1 + Shift(1) + Alt(2) + Ctrl(4). */
function modifierParam({ ctrl, alt }) {
  return 1 + (alt ? 2 : 0) + (ctrl ? 4 : 0);
}

/**
 * The bytes for a key-bar key. `applicationCursor` is the terminal's DECCKM mode (vim, less
 * switch it on: arrows then send ESC O A rather than ESC [ A).
 */
export function sequence(key, modifiers = {}, applicationCursor = false) {
  const param = modifierParam(modifiers);
  if (key in CURSOR) {
    if (param > 1) return `${CSI}1;${param}${CURSOR[key]}`;
    return (applicationCursor ? '\x1bO' : CSI) + CURSOR[key];
  }
  if (key in TILDE) return param > 1 ? `${CSI}${TILDE[key]};${param}~` : `${CSI}${TILDE[key]}~`;
  return withModifiers(PLAIN[key], modifiers);
}

/** Typed text with the sticky modifiers applied: Ctrl turns a letter into its control code,
 * Alt prefixes ESC (the meta convention). Only a single key is modified, not a paste. */
export function withModifiers(data, { ctrl, alt } = {}) {
  if ((!ctrl && !alt) || [...data].length !== 1) return data;
  let out = data;
  if (ctrl) out = controlCode(out);
  return alt ? '\x1b' + out : out;
}

function controlCode(char) {
  const code = char.toUpperCase().charCodeAt(0);
  if (code >= 64 && code <= 95) return String.fromCharCode(code - 64); // @, A–Z, [ \ ] ^ _
  if (char === ' ' || char === '2') return '\x00';
  if (char === '?') return '\x7f';
  return char;
}
