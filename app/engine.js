// @ts-check
// Boots the core (src/, built with the feature `app`) in this page: the
// engine in the primary role, its socket to this server (`/v1/ws`, same
// origin), its store in IndexedDB. The page is the host (src/host.rs):
// it persists the core's writes, shows notifications, and hands each
// update to the views (the title and app badge count unread chats).
//
// Why the page and not a dedicated Worker: the core is small per input
// (a frame, a command) and already runs as one serial queue; the page is
// where the Notification, badge and camera APIs live; and a phone's
// browser suspends a background tab's workers with the page anyway.

import init, { Core } from "../wasm/tether_app.js";
import { historyDb, loadAll, openDb, persist } from "./idb.js";
import { getHistory, historyKeys, readHistory } from "../common/history.js";
import { onTransfer, sweepOutgoing } from "./transfer.js";

/** @typedef {import("../wasm/tether_app.js").Update} Update */
/** @typedef {import("../wasm/tether_app.js").Snapshot} Snapshot */
/** @typedef {import("../wasm/tether_app.js").Host} Host */

/** @type {Set<(update: Update) => void>} */
const listeners = new Set();

/**
 * Calls `fn` with every update the core publishes.
 * @param {(update: Update) => void} fn
 */
export function onUpdate(fn) {
  listeners.add(fn);
}

/** This phone as the account's device list names it. */
export function platform() {
  const ua = navigator.userAgent;
  const os = /Android/.test(ua) ? "android" : /iPhone|iPad|iPod/.test(ua) ? "ios" : /Mac OS X/.test(ua) ? "macos" : /Windows/.test(ua) ? "windows" : /Linux/.test(ua) ? "linux" : "web";
  const browser = /Firefox\//.test(ua) ? "firefox" : /Edg\//.test(ua) ? "edge" : /Chrome\//.test(ua) ? "chrome" : /Safari\//.test(ua) ? "safari" : "browser";
  const osName = { android: "Android", ios: "iOS", macos: "macOS", windows: "Windows", linux: "Linux", web: "the web" }[os];
  const browserName = { firefox: "Firefox", edge: "Edge", chrome: "Chrome", safari: "Safari", browser: "Browser" }[browser];
  return { id: `web/${os}`, name: `${browserName} on ${osName}` };
}

/** @param {number} unread */
function showUnread(unread) {
  document.title = unread ? `(${unread}) Tether` : "Tether";
  const nav = /** @type {Navigator & { setAppBadge?: (n?: number) => Promise<void>, clearAppBadge?: () => Promise<void> }} */ (navigator);
  if (unread) nav.setAppBadge?.(unread).catch(() => {});
  else nav.clearAppBadge?.().catch(() => {});
}

/** @returns {Promise<ServiceWorkerRegistration | null>} */
async function registration() {
  if (!("serviceWorker" in navigator)) return null;
  return (await navigator.serviceWorker.getRegistration()) ?? null;
}

/** The core, once open (file orders may come before `boot` returns). @type {Core | undefined} */
let opened;

/**
 * @param {IDBDatabase} db
 * @returns {Host}
 */
function createHost(db) {
  return {
    persist: (writes) => persist(db, writes),
    readHistory: (ns, prefix) => readHistory(historyDb(db), ns, prefix),
    historyKeys: (ns, prefix, limit) => historyKeys(historyDb(db), ns, prefix, limit),
    getHistory: (ns, keys) => getHistory(historyDb(db), ns, keys),
    async showNotification(n) {
      // Only where the person allowed it, and not over the open app.
      if (typeof Notification === "undefined" || Notification.permission !== "granted" || document.visibilityState === "visible") return;
      const reg = await registration();
      // Android's Chrome only shows notifications through the service worker.
      if (reg) await reg.showNotification(n.title, { body: n.body, tag: n.id, data: { chat: n.chat }, icon: "app/icons/icon-192.png" });
      else new Notification(n.title, { body: n.body, tag: n.id });
    },
    async clearNotifications(chat) {
      const reg = await registration();
      if (!reg) return;
      for (const shown of await reg.getNotifications()) {
        if (chat === null || shown.data?.chat === chat) shown.close();
      }
    },
    publish(update) {
      showUnread(update.snapshot.unread);
      for (const fn of listeners) fn(update);
    },
    // A file to move: the same code as the extension's worker (common/transfer.js).
    transfer(order) {
      onTransfer(() => opened, order);
    },
  };
}

/**
 * Holds the app's lock for as long as this page lives: two pages with one
 * core each would share one device key and one store and undo each other's
 * writes. Resolves false when another tab or window holds it.
 * @returns {Promise<boolean>}
 */
function holdLock() {
  if (!navigator.locks) return Promise.resolve(true);
  return new Promise((resolve) => {
    navigator.locks.request("tether-core", { ifAvailable: true }, (lock) => {
      resolve(!!lock);
      // Kept until the page goes away.
      return lock ? new Promise(() => {}) : undefined;
    });
  });
}

/** Boots once; every caller awaits the same core. @returns {Promise<Core>} */
async function boot() {
  if (!(await holdLock())) throw new Error("Tether is open in another tab or window. Close it, then reload this page.");
  // The wasm's address from this module's: the build bundles the app's
  // script into app/main.js, where the glue's default (beside itself)
  // would be wrong.
  await init({ module_or_path: new URL("../wasm/tether_app_bg.wasm", import.meta.url) });
  const db = await openDb();
  const entries = await loadAll(db);
  // Ask the browser not to evict this origin's storage: the account key lives here.
  navigator.storage?.persist?.().catch(() => false);
  const p = platform();
  const core = Core.open(createHost(db), p.id, p.name, location.origin, entries);
  opened = core;
  await core.wake();
  // Files a closed page left half-handed to the core.
  sweepOutgoing(core).catch(() => {});
  // A phone puts the page to sleep: reconnect when it is shown again.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") core.wake().catch(() => {});
  });
  window.addEventListener("online", () => core.wake().catch(() => {}));
  return core;
}

/** The core, once booted. */
export const ready = boot();
