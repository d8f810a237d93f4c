// Terminal text → HTML: escaped text, and SGR attributes and colours as classes only. The CSP
// allows no inline styles, and ansi_up 6 writes bold, faint, italic, underline and 256-palette
// or 24-bit colours as style attributes even with `use_classes`, so its span writer is
// replaced. The 16 colours are themed in app.css; any other colour gets a class whose rule is
// added through the CSSOM (which the CSP allows) the first time it is seen.

import { AnsiUp } from '../vendor/ansi_up/ansi_up.mjs';

const ATTRIBUTES = ['bold', 'faint', 'italic', 'underline'];

const colourSheet = new CSSStyleSheet();
document.adoptedStyleSheets = [...document.adoptedStyleSheets, colourSheet];
const colourClasses = new Set();

function rgbClass(rgb, layer) {
  const hex = rgb.map((level) => level.toString(16).padStart(2, '0')).join('');
  const name = `ansi-rgb-${hex}-${layer}`;
  if (!colourClasses.has(name)) {
    colourClasses.add(name);
    const property = layer === 'fg' ? 'color' : 'background-color';
    colourSheet.insertRule(`.${name} { ${property}: #${hex}; }`, colourSheet.cssRules.length);
  }
  return name;
}

function colourClass(colour, layer) {
  return colour.class_name === 'truecolor' ? rgbClass(colour.rgb, layer)
    : `${colour.class_name}-${layer}`;
}

class ClassOnlyAnsiUp extends AnsiUp {
  /** ansi_up's hook for one run of text in one SGR state. */
  transform_to_html(fragment) {
    const text = this.escape_txt_for_html(fragment.text);
    const classes = ATTRIBUTES.filter((name) => fragment[name]).map((name) => 'ansi-' + name);
    if (fragment.fg) classes.push(colourClass(fragment.fg, 'fg'));
    if (fragment.bg) classes.push(colourClass(fragment.bg, 'bg'));
    return text && classes.length ? `<span class="${classes.join(' ')}">${text}</span>` : text;
  }
}

const ansi = new ClassOnlyAnsiUp();
ansi.escape_html = true;

/** Terminal text (with escape sequences) → HTML; the SGR state carries over between calls. */
export function ansiToHtml(text) {
  return ansi.ansi_to_html(text);
}
