// @ts-check
// What a context-menu click, a keyboard command or a notification click
// does.

import { MENU_CHOOSE, chatOfMenuItem, shareFromClick } from "./menus.js";
import { chatOf } from "./notifications.js";
import { sendImage } from "./imageshare.js";

/** @typedef {import("../wasm/tether_core.js").Core} Core */

/** The share waiting for "Choose chat…" (chrome.storage.session). */
export const PENDING_SHARE_KEY = "pendingShare";
/** The chat a notification click opens (chrome.storage.session). */
export const OPEN_CHAT_KEY = "openChat";
const COMMAND_SEND_PAGE = "send-page-to-last-chat";

/**
 * @param {Core} core
 * @param {chrome.contextMenus.OnClickData} info
 * @param {chrome.tabs.Tab | undefined} tab
 * @returns {Promise<import("./imageshare.js").ImageOutcome | undefined>} for an image, what was sent
 */
export async function onMenuClick(core, info, tab) {
  const share = shareFromClick(info, tab);
  if (info.menuItemId === MENU_CHOOSE) {
    // Time-stamped: it expires (PENDING_SHARE_TTL_MS) unless a chat is explicitly picked for it.
    await chrome.storage.session.set({ [PENDING_SHARE_KEY]: { ...share, at: Date.now() } });
    await openPopup();
    return;
  }
  const chat = chatOfMenuItem(info.menuItemId);
  if (chat && share.image) return sendImage(core, { chat, url: share.url, title: share.title });
  if (chat) await core.sendLink(chat, share.url, share.title, share.selection);
  return undefined;
}

/**
 * @param {Core} core
 * @param {string} command
 * @param {chrome.tabs.Tab | undefined} tab
 */
export async function onCommand(core, command, tab) {
  if (command !== COMMAND_SEND_PAGE) return;
  const [last] = core.recentChats(1);
  const active = tab || (await chrome.tabs.query({ active: true, lastFocusedWindow: true }))[0];
  if (!last || !active?.url) return;
  await core.sendLink(last.handle, active.url, active.title || "", "");
}

/**
 * Opens the chat of a clicked notification in the popup.
 * @param {string} id
 */
export async function onNotificationClick(id) {
  const chat = chatOf(id);
  await chrome.notifications.clear(id);
  if (chat === null) return;
  await chrome.storage.session.set({ [OPEN_CHAT_KEY]: chat });
  await openPopup(`#chat=${encodeURIComponent(chat)}`);
}

/**
 * The toolbar popup, or a popup window where that cannot open.
 * @param {string} [hash]
 */
export async function openPopup(hash = "") {
  try {
    await chrome.action.openPopup();
  } catch {
    await chrome.windows.create({ url: chrome.runtime.getURL(`popup/popup.html${hash}`), type: "popup", width: 400, height: 600 });
  }
}
