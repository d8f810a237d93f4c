// The one HTML sanitiser for what the log shows from elsewhere: agent Markdown and terminal
// output. Whatever an agent or a program prints must not be able to draw UI of its own (a
// sign-in form over the page), restyle the page, embed other pages or phone home.

import DOMPurify from '../vendor/dompurify/purify.mjs';

const purifier = DOMPurify(window);

const CONFIG = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: [
    'form', 'input', 'button', 'textarea', 'select', 'option', 'optgroup', 'datalist',
    'style', 'link', 'meta', 'base', 'iframe', 'frame', 'object', 'embed', 'svg', 'math',
    // Text drawn in the background colour (<font color>) would be copied but not seen; media
    // would fetch same-origin URLs with the owner's cookie and quota; dialogs pose as the UI.
    'font', 'video', 'audio', 'source', 'track', 'picture', 'dialog', 'marquee',
  ],
  FORBID_ATTR: [
    'style', 'action', 'formaction', 'srcdoc', 'srcset', 'color', 'size', 'face', 'bgcolor',
    'background', 'poster', 'popover', 'id', 'name', 'width', 'height',
  ],
};

// Only classes that style text: marked's code languages and the terminal colours. The app's
// own classes (a full-screen `sheet-backdrop`, say) would let a message pose as the UI.
const TEXT_CLASS = /^(language-[\w+#.-]+|ansi-[\w-]+)$/;

purifier.addHook('uponSanitizeAttribute', (node, event) => {
  if (event.attrName !== 'class') return;
  event.attrValue = event.attrValue.split(/\s+/).filter((name) => TEXT_CLASS.test(name)).join(' ');
  event.keepAttr = event.attrValue !== '';
});

purifier.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
  // Remote images would tell their host who reads the log and when (the CSP's img-src blocks
  // them as well); without a src the browser shows the alt text instead.
  if (node.tagName === 'IMG' && !/^data:image\//i.test(node.getAttribute('src') || '')) {
    node.removeAttribute('src');
  }
});

/** HTML → the same HTML without anything that could pose as the UI (a string). */
export function sanitisedHtml(html) {
  return purifier.sanitize(html, CONFIG);
}

/** The same, as a DocumentFragment to adjust before it is serialised. */
export function sanitisedFragment(html) {
  return purifier.sanitize(html, { ...CONFIG, RETURN_DOM_FRAGMENT: true });
}
