// @ts-check
// The context menu: "Send to Tether" on pages, links, selections and
// images, with the recent chats, the note to self (always offered) and
// "Choose chat…". Rebuilt (removeAll, then create) only when they change.

/** @typedef {import("../wasm/tether_core.js").RecentChat} RecentChat */

export const MENU_ROOT = "tether-send";
export const MENU_CHOOSE = "tether-choose";
const CHAT_PREFIX = "chat:";
/** @type {[`${chrome.contextMenus.ContextType}`, ...`${chrome.contextMenus.ContextType}`[]]} */
const CONTEXTS = ["page", "link", "selection", "image"];

/** What a click shares (`image`: the URL is an image's, sent as the image itself). @typedef {{ url: string, title: string, selection: string, image?: boolean }} Share */

let shownKey = "";

/**
 * @param {RecentChat[] | null} recent the recent chats, or null when not linked (no menu)
 * @param {string | null} [me] this account's handle: its note to self is always offered
 */
export function rebuildMenus(recent, me = null) {
  const key = JSON.stringify([recent, me]);
  if (key === shownKey) return;
  shownKey = key;
  chrome.contextMenus.removeAll(() => {
    if (!recent) return;
    chrome.contextMenus.create({ id: MENU_ROOT, title: chrome.i18n.getMessage("menuSendTo"), contexts: CONTEXTS });
    for (const c of recent) {
      chrome.contextMenus.create({ id: `${CHAT_PREFIX}${c.handle}`, parentId: MENU_ROOT, title: c.name, contexts: CONTEXTS });
    }
    // Among the recent chats once written to; offered anyway.
    if (me && !recent.some((c) => c.handle === me)) {
      chrome.contextMenus.create({ id: `${CHAT_PREFIX}${me}`, parentId: MENU_ROOT, title: chrome.i18n.getMessage("noteToSelf"), contexts: CONTEXTS });
    }
    chrome.contextMenus.create({ id: MENU_CHOOSE, parentId: MENU_ROOT, title: chrome.i18n.getMessage("menuChoose"), contexts: CONTEXTS });
  });
}

/**
 * The chat a menu item sends to, or null.
 * @param {string | number} menuItemId
 * @returns {string | null}
 */
export function chatOfMenuItem(menuItemId) {
  const id = String(menuItemId);
  return id.startsWith(CHAT_PREFIX) ? id.slice(CHAT_PREFIX.length) : null;
}

/**
 * What a right-click shares: image → its URL, marked as an image; link → the link;
 * selection → the quoted text with the page; page → URL + title.
 * @param {chrome.contextMenus.OnClickData} info
 * @param {chrome.tabs.Tab | undefined} tab
 * @returns {Share}
 */
export function shareFromClick(info, tab) {
  if (info.mediaType === "image" && info.srcUrl) return { url: info.srcUrl, title: tab?.title || "", selection: "", image: true };
  // Firefox also gives the link's text (`linkText`); Chrome, only a selection.
  if (info.linkUrl) return { url: info.linkUrl, title: info.selectionText || /** @type {{ linkText?: string }} */ (info).linkText || "", selection: "" };
  const page = info.pageUrl || tab?.url || "";
  if (info.selectionText) return { url: page, title: tab?.title || "", selection: info.selectionText };
  return { url: page, title: tab?.title || "", selection: "" };
}
