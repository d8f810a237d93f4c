// Two routes, relative to the token root: '' (dashboard) and 'session/<id>'.

import { ROOT } from './api.js';
import { changed, state } from './store.js';

const listeners = [];

export function onRoute(fn) {
  listeners.push(fn);
}

export function parseRoute(href = location.href) {
  const url = new URL(href);
  const rest = url.pathname.startsWith(ROOT.pathname) ? url.pathname.slice(ROOT.pathname.length) : '';
  const match = rest.match(/^session\/([^/]+)\/?$/);
  return match ? { view: 'session', id: decodeURIComponent(match[1]) } : { view: 'dashboard' };
}

function apply() {
  state.route = parseRoute();
  state.sheet = null;
  for (const fn of listeners) fn(state.route);
  changed();
}

export function navigate(path, replace = false) {
  const url = new URL(path, ROOT).toString();
  if (replace) history.replaceState(null, '', url); else history.pushState(null, '', url);
  apply();
}

window.addEventListener('popstate', apply);
