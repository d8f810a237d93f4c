// The last entries of recently opened sessions, kept in IndexedDB so that a reload while
// offline shows something (marked as cached) until the socket is back.
//
// Bounded: CACHED_SESSIONS sessions (the most recently saved) × CACHED_ENTRIES entries per
// log. A session's records go when it is deleted. A view-only link's pages never write
// (see cacheLog's caller): a link shared with someone leaves nothing on their device.

export const CACHED_SESSIONS = 8;
export const CACHED_ENTRIES = 300;
const SAVE_DELAY_MS = 1000;
const STORE = 'logs';

let opening = null;
const pendingSaves = new Map(); // logKey → timer

function open() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      if (!('indexedDB' in self)) { reject(new Error('no IndexedDB')); return; }
      const request = indexedDB.open('maestro-log-cache', 1);
      request.onupgradeneeded = () => {
        request.result.createObjectStore(STORE, { keyPath: 'key' }).createIndex('sessionId', 'sessionId');
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

/** Keep the tail of one log (debounced), then drop the sessions beyond CACHED_SESSIONS. */
export function cacheLog(key, sessionId, entries) {
  clearTimeout(pendingSaves.get(key));
  const tail = entries.slice(-CACHED_ENTRIES);
  pendingSaves.set(key, setTimeout(() => {
    pendingSaves.delete(key);
    withStore('readwrite', (store) => store.put({ key, sessionId, savedAt: Date.now(), entries: tail }))
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

/** The cached entries of a log, or null. */
export async function cachedLog(key) {
  try {
    const record = await withStore('readonly', (store) => store.get(key));
    return record ? record.entries : null;
  } catch (err) {
    return null;
  }
}

/** Forget everything cached for a deleted session. */
export function forgetSession(sessionId) {
  for (const key of [...pendingSaves.keys()]) {
    if (key.startsWith(sessionId + '|')) { clearTimeout(pendingSaves.get(key)); pendingSaves.delete(key); }
  }
  withStore('readwrite', (store) => {
    const cursor = store.index('sessionId').openKeyCursor(IDBKeyRange.only(sessionId));
    cursor.onsuccess = () => { if (cursor.result) { store.delete(cursor.result.primaryKey); cursor.result.continue(); } };
  }).catch(() => {});
}
