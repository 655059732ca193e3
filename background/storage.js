// @ts-check
// chrome.storage: the core's writes (local), and the snapshot cached for
// the popup's first paint (session); the message history in IndexedDB
// (common/history.js), never loaded at wake.

import { writeHistory } from "../common/history.js";

/** @typedef {import("../wasm/tether_core.js").Writes} Writes */
/** @typedef {import("../wasm/tether_core.js").Snapshot} Snapshot */

/** The key of the cached snapshot in chrome.storage.session. */
export const SNAPSHOT_KEY = "snapshot";
/** The engine's keys in chrome.storage.local (the settings key is not one). */
const ENGINE_PREFIX = "kv/";
/** The history's database and object store. */
const HISTORY_DB = "tether-history";
const HISTORY_STORE = "history";

/** @typedef {import("../common/history.js").HistoryDb} HistoryDb */

/** @type {Promise<HistoryDb> | undefined} */
let historyDb;

/** The history's database, opened once per worker life. @returns {Promise<HistoryDb>} */
export function history() {
  historyDb ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(HISTORY_DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(HISTORY_STORE);
    req.onsuccess = () => resolve({ db: req.result, store: HISTORY_STORE, prefix: "" });
    req.onerror = () => reject(req.error ?? new Error("IndexedDB could not be opened"));
  });
  return historyDb;
}

/**
 * Writes the history part of a batch in one durable transaction.
 * @param {Writes} writes
 * @returns {Promise<void>}
 */
async function persistHistory(writes) {
  if (!writes.clear && !writes.historyRemove.length && !Object.keys(writes.historySet).length) return;
  const h = await history();
  await new Promise((resolve, reject) => {
    const tx = h.db.transaction(h.store, "readwrite", { durability: "strict" });
    writeHistory(h, tx.objectStore(h.store), writes);
    tx.oncomplete = () => resolve(undefined);
    tx.onerror = () => reject(tx.error ?? new Error("IndexedDB write failed"));
    tx.onabort = () => reject(tx.error ?? new Error("IndexedDB write aborted"));
  });
}

/**
 * Persists one batch of the core's writes: clear the engine's keys if
 * asked, then remove, then set. The core sends nothing before this resolves.
 * @param {Writes} writes
 * @returns {Promise<void>}
 */
export async function persist(writes) {
  // History first: a stop in between leaves a message stored whose
  // envelope is not yet marked applied; it comes again and is written
  // again under the same key.
  await persistHistory(writes);
  if (writes.clear) {
    const keys = Object.keys(await chrome.storage.local.get(null)).filter((k) => k.startsWith(ENGINE_PREFIX));
    if (keys.length) await chrome.storage.local.remove(keys);
  }
  if (writes.remove.length) await chrome.storage.local.remove(writes.remove);
  /** @type {Record<string, unknown>} */
  const set = { ...writes.set };
  if (writes.settings) set.settings = writes.settings;
  if (Object.keys(set).length) await chrome.storage.local.set(set);
}

/**
 * Caches the snapshot so a popup paints at once, before the worker answers.
 * @param {Snapshot} snapshot
 * @returns {Promise<void>}
 */
export function cacheSnapshot(snapshot) {
  return chrome.storage.session.set({ [SNAPSHOT_KEY]: snapshot });
}
