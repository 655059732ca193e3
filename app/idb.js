// @ts-check
// The core's storage in the web app: IndexedDB, one object store of
// key/value entries (the engine's `kv/<ns>/<key>` → base64, and
// `settings`), the same entries the extension keeps in chrome.storage.local.
// One batch of writes is one transaction: all of it lands, or none.
// The message history is in the same object store under `h/<ns>/<key>`
// (common/history.js); it is not loaded at start, the core reads it.

/** @typedef {import("../wasm/tether_app.js").Writes} Writes */
/** @typedef {import("../common/history.js").HistoryDb} HistoryDb */
import { writeHistory } from "../common/history.js";

const DB_NAME = "tether";
const STORE = "kv";
/** The engine's keys (the settings key is not one: a log-out keeps it). */
const ENGINE_PREFIX = "kv/";
/** Where the history is filed in the object store. */
export const HISTORY_PREFIX = "h/";

/**
 * The history in this database (common/history.js).
 * @param {IDBDatabase} db
 * @returns {HistoryDb}
 */
export function historyDb(db) {
  return { db, store: STORE, prefix: HISTORY_PREFIX };
}

/** @returns {Promise<IDBDatabase>} */
export function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB could not be opened"));
    req.onblocked = () => reject(new Error("IndexedDB is blocked by another tab of this app"));
  });
}

/**
 * Every entry but the history, as `Core.open` takes them (key → value).
 * @param {IDBDatabase} db
 * @returns {Promise<Record<string, unknown>>}
 */
export function loadAll(db) {
  return new Promise((resolve, reject) => {
    /** @type {Record<string, unknown>} */
    const entries = {};
    const tx = db.transaction(STORE, "readonly");
    // Keys sort as strings: everything before `h/` and everything after its range.
    const before = tx.objectStore(STORE).openCursor(IDBKeyRange.upperBound(HISTORY_PREFIX, true));
    before.onsuccess = () => {
      const cursor = before.result;
      if (!cursor) return;
      entries[String(cursor.key)] = cursor.value;
      cursor.continue();
    };
    const req = tx.objectStore(STORE).openCursor(IDBKeyRange.lowerBound(HISTORY_PREFIX + "\uffff", true));
    req.onsuccess = () => {
      const cursor = req.result;
      if (!cursor) return;
      entries[String(cursor.key)] = cursor.value;
      cursor.continue();
    };
    tx.oncomplete = () => resolve(entries);
    tx.onerror = () => reject(tx.error ?? new Error("IndexedDB read failed"));
  });
}

/**
 * Persists one batch of the core's writes in one transaction: clear the
 * engine's keys if asked, then remove, then set. Resolves once committed
 * (the core sends nothing before).
 * @param {IDBDatabase} db
 * @param {Writes} writes
 * @returns {Promise<void>}
 */
export function persist(db, writes) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, "readwrite", { durability: "strict" });
    const store = tx.objectStore(STORE);
    writeHistory(historyDb(db), store, writes);
    if (writes.clear) {
      // Keys sort as strings: `kv/` up to `kv0` (the next character) is every engine key.
      store.delete(IDBKeyRange.bound(ENGINE_PREFIX, "kv0", false, true));
    }
    for (const key of writes.remove) store.delete(key);
    for (const [key, value] of Object.entries(writes.set)) store.put(value, key);
    if (writes.settings) store.put(writes.settings, "settings");
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error("IndexedDB write failed"));
    tx.onabort = () => reject(tx.error ?? new Error("IndexedDB write aborted"));
  });
}
