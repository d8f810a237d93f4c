// The last entries of recently opened sessions, kept in IndexedDB so that a reload while
// offline shows something (marked as cached) until the socket is back.
//
// Bounded: CACHED_SESSIONS sessions (the most recently saved) × CACHED_ENTRIES entries per
// log. A session's records go when it is deleted. A view-only link's pages never write
// (see cacheLog's caller): a link shared with someone leaves nothing on their device.
//
// Kept per token: each record carries the server's id for the token this page holds
// (`cacheId` of GET whoami, which reveals neither the token nor the cookie), and a page reads
// only its own. The id is remembered for an offline start (the last one the server gave
// this browser: the pairing cookie it holds). An owner's page told of a new owner id (the
// token was rotated, or the server started afresh) drops what was kept under the old one.

import { load, save } from './api.js';

export const CACHED_SESSIONS = 8;
export const CACHED_ENTRIES = 300;
const SAVE_DELAY_MS = 1000;
const STORE = 'logs';
const DB_VERSION = 2; // 2: records keyed by cacheId (1 kept them for any token: dropped)

let opening = null;
const pendingSaves = new Map(); // logKey → timer
let identity = load('cacheIdentity', null); // {role, cacheId}: this page's, or the last known

function open() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      if (!('indexedDB' in self)) { reject(new Error('no IndexedDB')); return; }
      const request = indexedDB.open('maestro-log-cache', DB_VERSION);
      request.onupgradeneeded = () => {
        const db = request.result;
        if (db.objectStoreNames.contains(STORE)) db.deleteObjectStore(STORE);
        db.createObjectStore(STORE, { keyPath: 'key' });
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  return opening;
}

/** Run fn(store) in one transaction; resolves with fn's request result (if any). */
async function withStore(mode, fn) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const request = fn(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(request ? request.result : undefined);
    tx.onerror = () => reject(tx.error);
  });
}

/** Delete every record for which drop(record) is true (a few dozen at most: a scan). */
function deleteWhere(drop) {
  return withStore('readwrite', (store) => {
    const cursor = store.openCursor();
    cursor.onsuccess = () => {
      if (!cursor.result) return;
      if (drop(cursor.result.value)) cursor.result.delete();
      cursor.result.continue();
    };
  });
}

const recordKey = (cacheId, key) => `${cacheId}|${key}`;

/** What the server says this page is (GET whoami): the copies it reads and writes. */
export function setIdentity({ role, cacheId }) {
  if (!cacheId) return;
  identity = { role, cacheId };
  save('cacheIdentity', identity);
  if (role === 'owner') deleteWhere((r) => r.cacheId !== cacheId).catch(() => {});
}

/** Keep the tail of one log (debounced), then drop the sessions beyond CACHED_SESSIONS. */
export function cacheLog(key, sessionId, entries) {
  if (!identity) return;
  const { cacheId } = identity;
  clearTimeout(pendingSaves.get(key));
  const tail = entries.slice(-CACHED_ENTRIES);
  pendingSaves.set(key, setTimeout(() => {
    pendingSaves.delete(key);
    const record = { key: recordKey(cacheId, key), cacheId, sessionId, savedAt: Date.now(), entries: tail };
    withStore('readwrite', (store) => store.put(record))
      .then(prune).catch(() => { /* private mode or quota: the cache is a nicety */ });
  }, SAVE_DELAY_MS));
}

async function prune() {
  const records = await withStore('readonly', (store) => store.getAll());
  const newest = new Map(); // sessionId → its latest save
  for (const r of records) newest.set(r.sessionId, Math.max(newest.get(r.sessionId) || 0, r.savedAt));
  const keep = new Set([...newest.entries()].sort((a, b) => b[1] - a[1])
    .slice(0, CACHED_SESSIONS).map(([id]) => id));
  const stale = records.filter((r) => !keep.has(r.sessionId)).map((r) => r.key);
  if (stale.length) await withStore('readwrite', (store) => { stale.forEach((k) => store.delete(k)); });
}

/** The cached entries of a log kept for this page's token, or null. */
export async function cachedLog(key) {
  if (!identity) return null;
  try {
    const record = await withStore('readonly', (store) => store.get(recordKey(identity.cacheId, key)));
    return record ? record.entries : null;
  } catch (err) {
    return null;
  }
}

function cancelSaves(which) {
  for (const key of [...pendingSaves.keys()]) {
    if (which(key)) { clearTimeout(pendingSaves.get(key)); pendingSaves.delete(key); }
  }
}

/** Forget everything cached for a deleted session. */
export function forgetSession(sessionId) {
  cancelSaves((key) => key.startsWith(sessionId + '|'));
  deleteWhere((r) => r.sessionId === sessionId).catch(() => {});
}

/** Forget every copy kept in this browser, of every token ("Forget cached logs"). */
export function forgetAll() {
  cancelSaves(() => true);
  return deleteWhere(() => true);
}
