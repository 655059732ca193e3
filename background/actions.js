// @ts-check
// What a context-menu click, a keyboard command or a notification click
// does. A shared page goes with the preview made from its tab (preview.js).

import { MENU_CHOOSE, chatOfMenuItem, shareFromClick } from "./menus.js";
import { chatOf } from "./notifications.js";
import { sendImage } from "./imageshare.js";
import { pagePreview } from "./preview.js";

/** @typedef {import("../wasm/tether_core.js").Core} Core */

/** The share waiting for "Choose chat…" (chrome.storage.session). */
export const PENDING_SHARE_KEY = "pendingShare";
/** The chat a notification click opens (chrome.storage.session). */
export const OPEN_CHAT_KEY = "openChat";
const COMMAND_SEND_PAGE = "send-page-to-last-chat";

/**
 * The preview being made for the "Choose chat…" share of that time (the
 * click's `at`): made on the click, which gave activeTab on its tab, and
 * sent with the share if the user picks a chat for it. In memory, so
 * that "Send here" can wait for one still being made; a worker stopped in
 * between sends the link without it.
 * @type {{ at: number, made: Promise<import("./preview.js").PagePreview | null> } | null}
 */
let choosing = null;

/**
 * @param {Core} core
 * @param {chrome.contextMenus.OnClickData} info
 * @param {chrome.tabs.Tab | undefined} tab
 * @returns {Promise<import("./imageshare.js").ImageOutcome | undefined>} for an image, what was sent
 */
export async function onMenuClick(core, info, tab) {
  const share = shareFromClick(info, tab);
  // The page itself (or a selection on it) has a preview; a link or an image does not.
  const ofPage = !share.image && !info.linkUrl;
  if (info.menuItemId === MENU_CHOOSE) {
    // Time-stamped: it expires (PENDING_SHARE_TTL_MS) unless a chat is explicitly picked for it.
    const at = Date.now();
    choosing = ofPage ? { at, made: pagePreview(tab?.id, share.url) } : null;
    await chrome.storage.session.set({ [PENDING_SHARE_KEY]: { ...share, at } });
    await openPopup();
    return;
  }
  const chat = chatOfMenuItem(info.menuItemId);
  if (chat && share.image) return sendImage(core, { chat, url: share.url, title: share.title });
  if (chat) {
    const made = ofPage ? await pagePreview(tab?.id, share.url) : null;
    await core.sendLink(chat, share.url, made?.title || share.title, share.selection, made?.preview ?? null);
  }
  return undefined;
}

/**
 * The preview made when the "Choose chat…" share of `at` was chosen, if any.
 * @param {number} at
 */
export async function choosingPreview(at) {
  const c = choosing;
  choosing = null;
  return c?.at === at ? c.made : null;
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
  const made = await pagePreview(active.id, active.url);
  await core.sendLink(last.handle, active.url, made?.title || active.title || "", "", made?.preview ?? null);
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
