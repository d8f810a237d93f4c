// Web Push: subscribe this browser (the server pushes "needs you", "finished", "failed" even
// to a locked phone), and tell the server over the socket which session this page shows and
// whether it is in the foreground, so it does not push what the user is looking at.

import { del, get, load, post, rootUrl, save } from './api.js';
import { on, request } from './conn.js';
import { state } from './store.js';

export const CATEGORIES = [
  ['needs_input', 'Needs you (input or an approval)'],
  ['finished', 'Finished'],
  ['failed', 'Failed'],
];

/** { id, categories } of this browser's subscription on the server, or null. */
export function pushSubscription() {
  return load('push', null);
}

/** Why push cannot work in this browser, or '' when it can. */
export function pushUnavailable() {
  if (!window.isSecureContext) return 'Notifications need a secure connection (https).';
  if (!('serviceWorker' in navigator) || !('PushManager' in window)) return 'This browser has no push notifications.';
  if (!('Notification' in window)) return 'This browser has no notifications.';
  return '';
}

function keyBytes(base64url) {
  const text = atob(base64url.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (base64url.length % 4)) % 4));
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

async function registration() {
  await navigator.serviceWorker.register(rootUrl('sw.js'), { scope: rootUrl('') });
  return navigator.serviceWorker.ready;
}

/** Ask for permission, subscribe with the push service and keep the subscription on the
 *  server with `categories`; the same browser again only updates its categories. */
export async function enablePush(categories) {
  const why = pushUnavailable();
  if (why) throw new Error(why);
  const permission = await Notification.requestPermission();
  if (permission !== 'granted') throw new Error('Notifications are blocked for this site: allow them in the browser\'s site settings');
  const reg = await registration();
  let subscription = await reg.pushManager.getSubscription();
  if (!subscription) {
    const { publicKey } = await get('push/key');
    try {
      subscription = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(publicKey) });
    } catch (err) {
      throw new Error(`The browser's push service refused: ${err.message || err.name}`);
    }
  }
  const data = await post('push/subscriptions', { subscription: subscription.toJSON(), categories });
  save('push', { id: data.subscription.id, categories: data.subscription.categories });
  return data.subscription;
}

/** Forget the subscription on the server and with the push service. */
export async function disablePush() {
  const kept = pushSubscription();
  if (kept) {
    try { await del('push/subscriptions/' + encodeURIComponent(kept.id)); } catch (err) {
      if (err.status !== 404) throw err;
    }
  }
  save('push', null);
  const reg = await navigator.serviceWorker?.getRegistration(rootUrl(''));
  const subscription = reg && await reg.pushManager.getSubscription();
  if (subscription) await subscription.unsubscribe();
}

// ---- presence -----------------------------------------------------------------------------

/** Tell the server what this page shows (the `presence` message); sent again on every new
 *  connection, route change and visibility change. `state.presence` is what the server last
 *  confirmed. */
export function reportPresence() {
  const route = state.route || {};
  const presence = {
    sessionId: route.view === 'session' ? route.id : null,
    visible: document.visibilityState === 'visible',
  };
  request({ type: 'presence', ...presence })
    .then(() => { state.presence = presence; })
    .catch(() => { /* offline: sent again with the next connection */ });
}

on('init', reportPresence);
document.addEventListener('visibilitychange', reportPresence);
