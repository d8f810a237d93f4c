// Actions on a running session that never wait in the offline queue: interrupt, keystrokes
// and the terminal size go out now or not at all (a queued Ctrl-C or password is worse than
// none).

import { post } from './api.js';
import { isOpen, request } from './conn.js';
import { toast } from './store.js';

/** The red Stop button, over REST: the socket's messages are handled one after the other,
 * and a keystroke waiting for room in the terminal (up to 5 s) would hold Stop up there. */
export async function interruptSession(sessionId) {
  try {
    await post(`session/${sessionId}/interrupt`);
  } catch (err) {
    toast(err.message, 'error');
  }
}

const KEY_REPLY_MS = 5000; // a keystroke that is not answered by then is lost anyway

function now(message) {
  if (!isOpen()) return Promise.reject(Object.assign(new Error('Not connected'), { status: 0 }));
  return request(message, KEY_REPLY_MS);
}

/** Keys as typed (no newline added), straight to the PTY. */
/** Keys for the PTY; `reply`: the terminal answering a query of the program (DA, cursor
 * position...), which the server passes on only from the view whose size is in force. */
export function sendInput(sessionId, data, reply = false) {
  return now({ type: 'input', sessionId, data, ...(reply ? { reply } : {}) });
}

/** Named keys (the log view's key bar: "C-c", "Up"...) for the running program, over the
 * socket: like the terminal view's keys they spend the key budget, never the POST quota. */
export function sendKeys(sessionId, keys) {
  return now({ type: 'keys', sessionId, keys });
}

export function sendResize(sessionId, cols, rows) {
  return now({ type: 'resize', sessionId, cols, rows });
}

/** A line typed while the terminal does not echo (a password): sent now, never queued or
 * kept, so it stays out of localStorage. */
export function sendSecret(sessionId, text) {
  return now({ type: 'send_command', sessionId, command: text });
}
