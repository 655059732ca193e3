// @ts-check
// The toolbar badge: the unread count of unmuted chats (red), "?" while not
// linked (orange), grey ("off", or the count) while disconnected.

/** @typedef {import("../wasm/tether_core.js").Snapshot} Snapshot */

const RED = "#d93025";
const ORANGE = "#b4540a";
const GREY = "#6b7280";

/**
 * This worker life's badge milestones (ms since it started; see core.js
 * `boot`): the first badge, the first one while connected, and each
 * count shown, once (`cargo xtask bench extension` finds when the count
 * with the queued messages showed).
 */
export const badgeTimes = {
  first: /** @type {number | undefined} */ (undefined),
  connected: /** @type {number | undefined} */ (undefined),
  /** @type {Record<string, number>} */
  shown: {},
};

/**
 * @param {Snapshot} snapshot
 */
export function updateBadge(snapshot) {
  const unread = snapshot.unread;
  let text = unread > 0 ? (unread > 99 ? "99+" : String(unread)) : "";
  let color = RED;
  let title = unread ? chrome.i18n.getMessage("badgeUnread", [String(unread)]) : chrome.i18n.getMessage("actionTitle");
  if (snapshot.state !== "linked") {
    text = "?";
    color = ORANGE;
    title = chrome.i18n.getMessage("badgeNotLinked");
  } else if (snapshot.connection !== "connected") {
    text = text || "off";
    color = GREY;
    title = chrome.i18n.getMessage("badgeOffline");
  }
  chrome.action.setBadgeText({ text });
  const now = performance.now();
  badgeTimes.first ??= now;
  if (snapshot.connection === "connected") badgeTimes.connected ??= now;
  if (Object.keys(badgeTimes.shown).length < 32) badgeTimes.shown[text] ??= now;
  chrome.action.setBadgeBackgroundColor({ color });
  chrome.action.setTitle({ title: title || "Tether" });
}
