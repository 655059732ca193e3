// @ts-check
// Notifications, as the core asks for them. The id carries the message id,
// so showing one again (after a worker restart) replaces it, never
// duplicates it.

/** @typedef {import("../wasm/tether_core.js").Notification} Notification */

const PREFIX = "msg:";

/**
 * @param {string} chat
 * @param {string} message the message id
 */
export function notificationId(chat, message) {
  return `${PREFIX}${chat}:${message}`;
}

/**
 * The chat a notification belongs to, or null for another kind of id.
 * @param {string} id
 * @returns {string | null}
 */
export function chatOf(id) {
  if (!id.startsWith(PREFIX)) return null;
  const rest = id.slice(PREFIX.length);
  const end = rest.lastIndexOf(":");
  return end > 0 ? rest.slice(0, end) : null;
}

/**
 * @param {Notification} n
 * @returns {Promise<void>}
 */
export async function showNotification(n) {
  await chrome.notifications.create(notificationId(n.chat, n.id), {
    type: "basic",
    iconUrl: chrome.runtime.getURL("icons/icon-128.png"),
    title: n.title,
    message: n.body,
    priority: 1,
  });
}

/**
 * Clears the shown notifications of a chat (every one for null).
 * @param {string | null} chat
 * @returns {Promise<void>}
 */
export async function clearNotifications(chat) {
  const shown = Object.keys(await chrome.notifications.getAll());
  const prefix = chat === null ? PREFIX : notificationId(chat, "");
  await Promise.all(shown.filter((id) => id.startsWith(prefix)).map((id) => chrome.notifications.clear(id)));
}
