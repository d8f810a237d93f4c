// Keeps a terminal emulator in step with one session's PTY (docs/terminal-protocol.md): paint
// `GET session/<id>/screen`, then apply the `session:pty` events from the screen's offset on,
// skipping bytes already painted. A gap in the offsets, or a new shell, paints the screen again.

import { get } from './api.js';

// xterm.js parses each write whole and yields between writes (after ~12 ms of them): a 64 KiB
// event of short lines is a ~50 ms task on a phone, slices of 8 KiB keep frames short.
const WRITE_SLICE = 8192;

export function base64Bytes(text) {
  if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export class PtyStream {
  /**
   * `term`: an xterm.js Terminal. `onProblem(error | null)`: the screen could not be loaded
   * (null: it loaded). `onPaint()`: a screen was painted (at the server's size).
   */
  constructor(sessionId, term, { onProblem, onPaint }) {
    this.sessionId = sessionId;
    this.term = term;
    this.onProblem = onProblem;
    this.onPaint = onPaint;
    this.offset = null;      // bytes of the stream painted so far; null while painting
    this.waiting = [];       // events that arrive while the screen loads
    this.generation = 0;     // a newer paint() supersedes an older one still loading
    this.replaying = false;  // the terminal is drawing a snapshot: its replies are stale
    this.closed = false;
  }

  /** Fetch the screen and paint it, then the events that came meanwhile. */
  async paint() {
    const generation = ++this.generation;
    this.offset = null;
    this.waiting = [];
    let screen;
    try {
      screen = await get(`session/${this.sessionId}/screen`);
    } catch (err) {
      if (generation === this.generation && !this.closed) this.onProblem(err);
      return;
    }
    if (generation !== this.generation || this.closed) return;
    this.onProblem(null);
    const term = this.term;
    term.reset();
    if (screen.cols !== term.cols || screen.rows !== term.rows) term.resize(screen.cols, screen.rows);
    this.replaying = true;
    term.write(screen.ansi, () => { if (generation === this.generation) this.replaying = false; });
    this.offset = screen.offset;
    const waiting = this.waiting;
    this.waiting = [];
    for (const event of waiting) this.receive(event);
    this.onPaint();
  }

  /** A `session:pty` event (for any session: others are ignored). */
  receive(event) {
    if (event.sessionId !== this.sessionId || this.closed) return;
    if (this.offset === null) {
      this.waiting.push(event);
      return;
    }
    if (event.reset) { // a new shell: its offsets start again at 0
      this.paint();
      return;
    }
    const bytes = base64Bytes(event.data);
    const end = event.offset + bytes.length;
    if (end <= this.offset) return; // painted already (a resume replays what we have)
    if (event.offset > this.offset) { // we missed bytes: the screen has them
      this.paint();
      return;
    }
    for (let at = this.offset - event.offset; at < bytes.length; at += WRITE_SLICE) {
      this.term.write(bytes.subarray(at, at + WRITE_SLICE));
    }
    this.offset = end;
  }

  close() {
    this.closed = true;
    this.generation += 1;
  }
}
