// The terminal view: xterm.js fed by the session's PTY (static/js/pty.js), fitted to the
// screen, with the size sent to the server (`resize`) and keystrokes and the key bar going
// straight to the PTY (`input`). xterm.js loads on first use, not with the app.

import { useEffect, useRef, useState } from '../vendor/preact/hooks.mjs';
import { interruptSession, sendInput, sendResize } from './actions.js';
import { on, setPty } from './conn.js';
import { TERMINAL_KEYS, sequence, withModifiers } from './keys.js';
import { PtyStream } from './pty.js';
import { state, toast } from './store.js';
import { Icon, html } from './ui.js';

const RESIZE_DELAY_MS = 150;
const TOAST_GAP_MS = 3000;
const NO_MODIFIERS = { ctrl: false, alt: false };
const ANSI_NAMES = ['black', 'red', 'green', 'yellow', 'blue', 'magenta', 'cyan', 'white'];
// Queries xterm.js answers by itself: DA 1/2/3, DSR and cursor position, DECRQM, window
// reports, XTVERSION; DECRQSS; colour queries. Their answers go out flagged `reply`.
const CSI_QUERIES = [{ final: 'c' }, { prefix: '>', final: 'c' }, { prefix: '=', final: 'c' },
  { final: 'n' }, { prefix: '?', final: 'n' }, { intermediates: '$', final: 'p' },
  { prefix: '?', intermediates: '$', final: 'p' }, { final: 't' }, { prefix: '>', final: 'q' }];
const DCS_QUERIES = [{ intermediates: '$', final: 'q' }];
const OSC_QUERIES = [4, 10, 11, 12, 17, 19];

let xtermModules = null;
function loadXterm() {
  xtermModules ||= Promise.all([import('../vendor/xterm/xterm.mjs'), import('../vendor/xterm/addon-fit.mjs')])
    .then(([xterm, fit]) => ({ Terminal: xterm.Terminal, FitAddon: fit.FitAddon }));
  return xtermModules;
}

/** The app's theme (its CSS custom properties, see app.css) as an xterm.js theme. */
function xtermTheme() {
  const css = getComputedStyle(document.documentElement);
  const read = (name) => css.getPropertyValue('--' + name).trim();
  const ansi = (name) => read(`ansi-${name}-fg`) || read(`ansi-${name}`);
  const theme = {
    background: read('bgMain'), foreground: read('textMain'), cursor: read('accent'),
    cursorAccent: read('bgMain'), selectionBackground: read('accentDim'),
  };
  for (const name of ANSI_NAMES) {
    theme[name] = ansi(name);
    theme['bright' + name[0].toUpperCase() + name.slice(1)] = ansi('bright-' + name);
  }
  return theme;
}

/** One xterm.js terminal bound to one session, from open to dispose. */
class LiveTerminal {
  constructor(element, sessionId, { Terminal, FitAddon }, { readOnly, takeModifiers, onProblem }) {
    this.sessionId = sessionId;
    this.readOnly = readOnly;
    this.takeModifiers = takeModifiers;
    this.sentSize = null;
    this.resizeTimer = null;
    this.fitFrame = 0;
    this.lastToast = 0;
    this.term = new Terminal({
      fontFamily: getComputedStyle(document.documentElement).getPropertyValue('--mono').trim() || 'monospace',
      fontSize: 13, scrollback: 5000, theme: xtermTheme(), disableStdin: readOnly,
    });
    this.fit = new FitAddon();
    this.term.loadAddon(this.fit);
    this.term.open(element);
    this.stream = new PtyStream(sessionId, this.term, { onProblem, onPaint: () => this.refit() });
    this.answering = false; // xterm.js is answering a query of the program (see markAnswers)
    this.stops = [
      ...this.markAnswers(),
      on('pty', (event) => this.stream.receive(event)),
      on('init', ({ resumed }) => { if (!resumed) this.start(); }), // else the replay catches up
      this.term.onData((data) => this.typed(data)).dispose,
      this.term.onResize(() => this.sizeChanged()).dispose,
    ];
    this.observer = new ResizeObserver(() => this.refit());
    this.observer.observe(element);
    setPty(true);
    this.start();
  }

  /**
   * Flag what xterm.js sends while it handles a query: our handler runs first and returns
   * false, so xterm.js's own one answers, synchronously, within the same parse; the flag
   * ends with that task (no key can be typed in between).
   */
  markAnswers() {
    const mark = () => {
      this.answering = true;
      queueMicrotask(() => { this.answering = false; });
      return false;
    };
    const parser = this.term.parser;
    return [
      ...CSI_QUERIES.map((id) => parser.registerCsiHandler(id, mark)),
      ...DCS_QUERIES.map((id) => parser.registerDcsHandler(id, mark)),
      ...OSC_QUERIES.map((id) => parser.registerOscHandler(id, mark)),
    ].map((handler) => () => handler.dispose());
  }

  /** Tell the server our size, then paint its screen (the screen then has our size). */
  async start() {
    this.sentSize = null;
    if (!this.readOnly) {
      this.fit.fit();
      await this.sendSize();
    }
    this.stream.paint();
  }

  refit() {
    if (this.readOnly) return;
    cancelAnimationFrame(this.fitFrame);
    this.fitFrame = requestAnimationFrame(() => this.fit.fit());
  }

  sizeChanged() {
    if (this.readOnly) return;
    clearTimeout(this.resizeTimer);
    this.resizeTimer = setTimeout(() => this.sendSize(), RESIZE_DELAY_MS);
  }

  async sendSize() {
    const { cols, rows } = this.term;
    if (this.sentSize === `${cols}x${rows}`) return;
    this.sentSize = `${cols}x${rows}`;
    try {
      await sendResize(this.sessionId, cols, rows);
    } catch (err) {
      this.sentSize = null;
      this.report(err);
    }
  }

  typed(data) {
    if (this.readOnly || this.stream.replaying) return; // replies to a snapshot's queries are stale
    if (this.answering) { // the server passes it on if our size is the one in force
      this.send(data, true);
      return;
    }
    this.send(withModifiers(data, this.takeModifiers()));
  }

  /** A key-bar key, in the terminal's current cursor-key mode. */
  key(name) {
    this.send(sequence(name, this.takeModifiers(), this.term.modes.applicationCursorKeysMode));
  }

  send(data, reply = false) {
    sendInput(this.sessionId, data, reply).catch((err) => this.report(err));
  }

  /** One toast for a burst of failures (a key repeat while offline), not one per key. */
  report(err) {
    if (Date.now() - this.lastToast < TOAST_GAP_MS) return;
    this.lastToast = Date.now();
    toast(err.message, 'error');
  }

  applyTheme() {
    this.term.options.theme = xtermTheme();
  }

  focus() {
    this.term.focus();
  }

  dispose() {
    for (const stop of this.stops) stop();
    this.observer.disconnect();
    clearTimeout(this.resizeTimer);
    cancelAnimationFrame(this.fitFrame);
    this.stream.close();
    this.term.dispose();
    setPty(false);
  }
}

export function TerminalView({ s, readOnly }) {
  const box = useRef(null);
  const live = useRef(null);
  const [problem, setProblem] = useState(null);
  const [modifiers, setModifiers] = useState(NO_MODIFIERS);
  const held = useRef(modifiers);
  held.current = modifiers;
  const takeModifiers = () => {
    const taken = held.current;
    if (taken.ctrl || taken.alt) {
      held.current = NO_MODIFIERS;
      setModifiers(NO_MODIFIERS);
    }
    return taken;
  };

  useEffect(() => {
    let gone = false;
    loadXterm().then((xterm) => {
      if (gone) return;
      live.current = new LiveTerminal(box.current, s.id, xterm, { readOnly, takeModifiers, onProblem: setProblem });
      if (!matchMedia('(pointer: coarse)').matches) live.current.focus(); // no keyboard pop-up on phones
    }).catch((err) => setProblem(err));
    return () => {
      gone = true;
      if (live.current) live.current.dispose();
      live.current = null;
    };
  }, [s.id]);

  const themeId = state.theme && state.theme.id;
  useEffect(() => { if (live.current) live.current.applyTheme(); }, [themeId]);

  const toggle = (name) => setModifiers({ ...held.current, [name]: !held.current[name] });
  const keep = (e) => e.preventDefault(); // the terminal keeps the focus (and the keyboard stays up)
  return html`<main id="main" class="termview" aria-label="Terminal" tabindex="-1">
      <div class="termview-screen" ref=${box} data-testid="terminal"></div>
      ${problem ? html`<div class="banner banner-warn termview-problem" role="alert">
        <span>The terminal could not load: ${problem.message}</span>
        <button type="button" class="btn btn-small" onClick=${() => live.current && live.current.start()}>Retry</button>
      </div>` : null}
    </main>
    ${readOnly ? null : html`<footer class="commandbar termkeys" aria-label="Terminal key bar">
      <div class="keybar" role="toolbar" aria-label="Terminal keys">
        ${['ctrl', 'alt'].map((name) => html`<button type="button" class="key key-mod" key=${name}
          aria-pressed=${modifiers[name]} aria-label=${name === 'ctrl' ? 'Ctrl' : 'Alt'}
          onMouseDown=${keep} onClick=${() => toggle(name)}>${name === 'ctrl' ? 'Ctrl' : 'Alt'}</button>`)}
        ${TERMINAL_KEYS.map(([label, name, key]) => html`<button type="button" class="key" key=${key}
          aria-label=${name} onMouseDown=${keep} onClick=${() => live.current && live.current.key(key)}>${label}</button>`)}
      </div>
      <button type="button" class="icon-btn btn-interrupt" aria-label="Interrupt" onMouseDown=${keep}
        onClick=${() => interruptSession(s.id)}><${Icon} name="stop" /></button>
    </footer>`}`;
}
