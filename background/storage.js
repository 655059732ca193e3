// @ts-check
// chrome.storage: the core's writes (local), and the snapshot cached for
// the popup's first paint (session).

/** @typedef {import("../wasm/tether_core.js").Writes} Writes */
/** @typedef {import("../wasm/tether_core.js").Snapshot} Snapshot */

/** The key of the cached snapshot in chrome.storage.session. */
export const SNAPSHOT_KEY = "snapshot";
/** The engine's keys in chrome.storage.local (the settings key is not one). */
const ENGINE_PREFIX = "kv/";

/**
 * Persists one batch of the core's writes: clear the engine's keys if
 * asked, then remove, then set. The core sends nothing before this resolves.
 * @param {Writes} writes
 * @returns {Promise<void>}
 */
export async function persist(writes) {
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
