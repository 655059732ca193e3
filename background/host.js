// @ts-check
// The host object the core calls (src/host.rs): it applies what the core
// decided, through chrome.* — storage writes, notifications, the badge, the
// context menu, the snapshot cache and open popups.

import { updateBadge } from "./badge.js";
import { rebuildMenus } from "./menus.js";
import { clearNotifications, showNotification } from "./notifications.js";
import { pages, ports, post } from "./ports.js";
import { chatReply, seenOnArrival } from "../common/messages.js";
import { cacheSnapshot, history, persist } from "./storage.js";
import { getHistory, historyKeys, readHistory } from "../common/history.js";
import { report } from "./log.js";
import { onTransfer } from "./transfer.js";

/** @typedef {import("../wasm/tether_core.js").Host} Host */
/** @typedef {import("../wasm/tether_core.js").Core} Core */

/**
 * @param {() => Core | undefined} core the core, once open (for messages of open chats)
 * @returns {Host}
 */
export function createHost(core) {
  /** An update not delivered yet: updates that come in a burst go out as one. @type {import("../wasm/tether_core.js").Update | null} */
  let queued = null;
  /** @param {import("../wasm/tether_core.js").Update} update */
  const deliver = (update) => {
    const { snapshot } = update;
    rebuildMenus(snapshot.state === "linked" ? update.recentChats : null, snapshot.account?.handle ?? null);
    cacheSnapshot(snapshot).catch(report);
    const c = core();
    for (const [port, open] of ports) {
      if (c && open !== null && update.changedChats.includes(open)) {
        post(port, chatReply(c, open, pages.get(port)));
        // The popup shows the chat: what arrives there is read.
        if (seenOnArrival(snapshot, open)) c.markRead(open).catch(report);
      }
      post(port, { kind: "snapshot", snapshot });
    }
  };
  return {
    persist,
    readHistory: async (ns, prefix) => readHistory(await history(), ns, prefix),
    historyKeys: async (ns, prefix, limit) => historyKeys(await history(), ns, prefix, limit),
    getHistory: async (ns, keys) => getHistory(await history(), ns, keys),
    showNotification,
    clearNotifications,
    publish(update) {
      // The badge at once; the menus, the cached snapshot and the popups
      // once per burst (500 contacts' lists answered after a wake are 500
      // updates), with the latest snapshot and every chat that changed.
      updateBadge(update.snapshot);
      if (queued) {
        queued = { ...update, changedChats: [...new Set([...queued.changedChats, ...update.changedChats])] };
        return;
      }
      queued = update;
      setTimeout(() => {
        const next = queued;
        queued = null;
        if (next) deliver(next);
      }, 0);
    },
    transfer(order) {
      onTransfer(core, order);
    },
  };
}
