// @ts-check
// The extension's file store in IndexedDB, shared by the popup and the
// worker (one origin, one database):
//
// - "outgoing": the plaintext of a file being sent, a Blob keyed first by
//   a key the popup makes (before the message exists), then by the
//   message id (the worker renames it once the core made the message).
//   It stays until the upload finished or was given up, so an upload
//   survives a worker stop and resumes from the server's offset.
// - "files": decrypted received files (and sent ones, once sent), a Blob
//   keyed by message id, for display and saving.
//
// Blobs are stored as Blobs: IndexedDB keeps them on disk, and a reader
// slices them without loading the whole file into memory.

const DB_NAME = "tether-files";
const DB_VERSION = 1;
export const OUTGOING = "outgoing";
export const FILES = "files";

/** Largest file a device sends (bytes of plaintext): the protocol's default, 64 MiB. */
export const MAX_FILE_SIZE = 64 * 1024 * 1024;

/** @type {Promise<IDBDatabase> | undefined} */
let opened;

/** @returns {Promise<IDBDatabase>} */
function db() {
  opened ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => {
      const d = req.result;
      if (!d.objectStoreNames.contains(OUTGOING)) d.createObjectStore(OUTGOING);
      if (!d.objectStoreNames.contains(FILES)) d.createObjectStore(FILES);
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => {
      opened = undefined;
      reject(req.error);
    };
  });
  return opened;
}

/**
 * Runs one request in a transaction and resolves when the transaction completed.
 * @template T
 * @param {string} store
 * @param {IDBTransactionMode} mode
 * @param {(s: IDBObjectStore) => IDBRequest<T> | void} fn
 * @returns {Promise<T | undefined>}
 */
async function tx(store, mode, fn) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const t = d.transaction(store, mode);
    const req = fn(t.objectStore(store));
    t.oncomplete = () => resolve(req ? req.result : undefined);
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error || new Error("IndexedDB transaction aborted"));
  });
}

/**
 * @param {string} store
 * @param {string} key
 * @returns {Promise<Blob | undefined>}
 */
export function getBlob(store, key) {
  return tx(store, "readonly", (s) => s.get(key));
}

/**
 * @param {string} store
 * @param {string} key
 * @param {Blob} blob
 */
export async function putBlob(store, key, blob) {
  await tx(store, "readwrite", (s) => s.put(blob, key));
}

/**
 * @param {string} store
 * @param {string} key
 */
export async function deleteBlob(store, key) {
  await tx(store, "readwrite", (s) => s.delete(key));
}

/**
 * Moves a Blob to another key in one transaction (the outgoing file gets
 * its message id).
 * @param {string} store
 * @param {string} from
 * @param {string} to
 * @returns {Promise<boolean>} whether there was one to move
 */
export async function renameBlob(store, from, to) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const t = d.transaction(store, "readwrite");
    const s = t.objectStore(store);
    let found = false;
    const get = s.get(from);
    get.onsuccess = () => {
      if (get.result === undefined) return;
      found = true;
      s.put(get.result, to);
      s.delete(from);
    };
    t.oncomplete = () => resolve(found);
    t.onerror = () => reject(t.error);
  });
}

/**
 * Every key of a store.
 * @param {string} store
 * @returns {Promise<string[]>}
 */
export async function keys(store) {
  return /** @type {string[]} */ ((await tx(store, "readonly", (s) => s.getAllKeys())) || []);
}
