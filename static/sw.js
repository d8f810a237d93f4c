// Maestro service worker: caches the static shell so the app opens on a flaky connection.
// Never caches the API (`api/`) or the WebSocket (`ws`): live data always comes from the server.
const VERSION = 'maestro-shell-v6';
const SCOPE = new URL('./', self.location).pathname; // /<token>/
const SHELL = [
  './', 'session/_',
  'manifest.json',
  'static/css/app.css',
  'static/js/app.js', 'static/js/actions.js', 'static/js/ansi.js', 'static/js/api.js',
  'static/js/approvals.js', 'static/js/attention.js', 'static/js/diff.js',
  'static/js/conn.js', 'static/js/dashboard.js', 'static/js/folders.js', 'static/js/keys.js',
  'static/js/log-window.js', 'static/js/logcache.js',
  'static/js/pty.js', 'static/js/push.js', 'static/js/render.js', 'static/js/router.js', 'static/js/sanitise.js',
  'static/js/session.js', 'static/js/store.js', 'static/js/terminal.js', 'static/js/ui.js',
  'static/vendor/preact/preact.mjs', 'static/vendor/preact/hooks.mjs', 'static/vendor/htm/htm.mjs',
  'static/vendor/marked/marked.mjs', 'static/vendor/dompurify/purify.mjs',
  'static/vendor/ansi_up/ansi_up.mjs',
  'static/vendor/xterm/xterm.mjs', 'static/vendor/xterm/addon-fit.mjs', 'static/vendor/xterm/xterm.css',
  'static/icons/icon-192.png', 'static/icons/icon.svg',
];

self.addEventListener('install', (event) => {
  // One file failing (a flaky network) must not fail the install: cache what arrives; the
  // rest is cached as the pages load it.
  event.waitUntil(caches.open(VERSION)
    .then((cache) => Promise.allSettled(SHELL.map((path) => cache.add(path))))
    .then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== VERSION).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

function isLive(url) {
  const rest = url.pathname.slice(SCOPE.length);
  return rest.startsWith('api/') || rest === 'ws' || rest.startsWith('ws/') || rest === 'sw.js';
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (!url.pathname.startsWith(SCOPE) || isLive(url)) return; // straight to the network
  // Pages and static files: the network first (fresh code), the cached copy when it fails.
  // Every session page is the same HTML, so one copy ('session/_') serves them all offline.
  const rest = url.pathname.slice(SCOPE.length);
  const key = request.mode === 'navigate' ? (rest.startsWith('session/') ? 'session/_' : './') : request;
  event.respondWith(fetch(request).then((response) => {
    if (response.ok) {
      const copy = response.clone();
      event.waitUntil(caches.open(VERSION).then((cache) => cache.put(key, copy)));
    }
    return response;
  }).catch(async () => (await caches.match(key)) ||
    new Response('Offline', { status: 503, headers: { 'Content-Type': 'text/plain' } })));
});

// Web Push from the server: { title, body, category, sessionId, url } (url relative to the
// token root). Shown at once, even on a locked phone; one notification per session (tag), the
// newest replacing the older.
self.addEventListener('push', (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (err) { data = {}; }
  let url = new URL(typeof data.url === 'string' ? data.url : '', self.registration.scope).href;
  if (!url.startsWith(self.registration.scope)) url = self.registration.scope; // ours only
  const options = {
    body: typeof data.body === 'string' ? data.body : '',
    tag: 'maestro-' + (data.sessionId || 'server'),
    renotify: true,
    data: { url },
    icon: new URL('static/icons/icon-192.png', self.registration.scope).href,
  };
  event.waitUntil(self.registration.showNotification(
    typeof data.title === 'string' && data.title ? data.title : 'Maestro', options));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || SCOPE;
  event.waitUntil(self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((list) => {
    for (const client of list) {
      if (new URL(client.url).pathname.startsWith(SCOPE)) {
        client.postMessage({ type: 'open', url });
        return client.focus();
      }
    }
    return self.clients.openWindow(url);
  }));
});
