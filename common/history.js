// @ts-check
// The message history in IndexedDB (see src/store.rs): the core's history
// writes (`<ns>/<key>` → text) and the reads the core asks for. Both the
// extension's worker and the web app keep it here; each passes its
// database, object store and the key prefix it files history under.

/** @typedef {{ db: IDBDatabase, store: string, prefix: string }} HistoryDb */

/**
 * Applies the history part of one batch of writes inside `tx` (the
 * caller's transaction on `h.store`): delete everything first if `clear`.
 * @param {HistoryDb} h
 * @param {IDBObjectStore} store
 * @param {{ clear: boolean, historySet: Record<string, string>, historyRemove: string[] }} writes
 */
export function writeHistory(h, store, writes) {
  if (writes.clear) {
    if (h.prefix) store.delete(IDBKeyRange.bound(h.prefix, h.prefix + "\uffff"));
    else store.clear();
  }
  for (const key of writes.historyRemove) store.delete(h.prefix + key);
  for (const [key, value] of Object.entries(writes.historySet)) store.put(value, h.prefix + key);
}

/**
 * Every record of namespace `ns` whose key starts with `keyPrefix`, in key
 * order, as [key, value] (the key without `<ns>/`).
 * @param {HistoryDb} h
 * @param {string} ns
 * @param {string} keyPrefix
 * @returns {Promise<[string, string][]>}
 */
export function readHistory(h, ns, keyPrefix) {
  const from = `${h.prefix}${ns}/${keyPrefix}`;
  const range = IDBKeyRange.bound(from, from + "\uffff");
  return new Promise((resolve, reject) => {
    const tx = h.db.transaction(h.store, "readonly");
    const store = tx.objectStore(h.store);
    const keys = store.getAllKeys(range);
    const values = store.getAll(range);
    tx.oncomplete = () => {
      const cut = h.prefix.length + ns.length + 1;
      resolve(keys.result.map((k, i) => [String(k).slice(cut), String(values.result[i])]));
    };
    tx.onerror = () => reject(tx.error ?? new Error("IndexedDB read failed"));
  });
}

/**
 * The keys (without `<ns>/`) of namespace `ns` that start with
 * `keyPrefix`, at most `limit`.
 * @param {HistoryDb} h
 * @param {string} ns
 * @param {string} keyPrefix
 * @param {number} limit
 * @returns {Promise<string[]>}
 */
export function historyKeys(h, ns, keyPrefix, limit) {
  const from = `${h.prefix}${ns}/${keyPrefix}`;
  return new Promise((resolve, reject) => {
    const tx = h.db.transaction(h.store, "readonly");
    const req = tx.objectStore(h.store).getAllKeys(IDBKeyRange.bound(from, from + "\uffff"), limit);
    tx.oncomplete = () => {
      const cut = h.prefix.length + ns.length + 1;
      resolve(req.result.map((k) => String(k).slice(cut)));
    };
    tx.onerror = () => reject(tx.error ?? new Error("IndexedDB read failed"));
  });
}

/**
 * The values of records of namespace `ns` by key, in one transaction
 * (null for a key that is not there).
 * @param {HistoryDb} h
 * @param {string} ns
 * @param {string[]} keys
 * @returns {Promise<(string | null)[]>}
 */
export function getHistory(h, ns, keys) {
  return new Promise((resolve, reject) => {
    const tx = h.db.transaction(h.store, "readonly");
    const store = tx.objectStore(h.store);
    const reqs = keys.map((k) => store.get(`${h.prefix}${ns}/${k}`));
    tx.oncomplete = () => resolve(reqs.map((r) => (r.result === undefined ? null : String(r.result))));
    tx.onerror = () => reject(tx.error ?? new Error("IndexedDB read failed"));
  });
}

/**
 * How many bytes the history takes (keys and values, as UTF-16 strings
 * count them: an estimate of what the browser stores).
 * @param {HistoryDb} h
 * @returns {Promise<{ records: number, bytes: number }>}
 */
export function historySize(h) {
  return new Promise((resolve, reject) => {
    const tx = h.db.transaction(h.store, "readonly");
    const range = h.prefix ? IDBKeyRange.bound(h.prefix, h.prefix + "\uffff") : undefined;
    const req = tx.objectStore(h.store).openCursor(range);
    let records = 0;
    let bytes = 0;
    req.onsuccess = () => {
      const c = req.result;
      if (!c) return;
      records += 1;
      bytes += String(c.key).length * 2 + String(c.value).length * 2;
      c.continue();
    };
    tx.oncomplete = () => resolve({ records, bytes });
    tx.onerror = () => reject(tx.error ?? new Error("IndexedDB read failed"));
  });
}
