// @ts-check
// The keyboard: Ctrl/Cmd+K to search, arrows through the list, Esc one step
// back (closes a menu, the chat's search, a reply or an edit, the chat, the
// screen, or clears the search).

import { $, $input } from "./dom.js";
import { closeMenu, menuKeydown } from "./menu.js";
import { closeChat } from "./screens/chat.js";
import { cancelCompose } from "./screens/compose.js";
import { closeMsgMenu, msgMenuKeydown } from "./screens/msgmenu.js";
import { closeChatSearch } from "./screens/search.js";
import { renderList } from "./screens/list.js";
import { data, redraw, ui } from "./state.js";

/**
 * Closes what lies over the open chat: a message's menu, the chat's
 * search, a reply or an edit under way. False if there was none.
 */
export function closeChatLayer() {
  if (ui.msgMenu) closeMsgMenu(true);
  else if (ui.screen === "chat" && ui.chatSearch !== null) closeChatSearch(true);
  else if (ui.screen === "chat" && ui.compose) cancelCompose();
  else return false;
  return true;
}

/** Esc and the back button: one step up. */
export function goBack() {
  if (ui.menu) return closeMenu(true);
  if (ui.msgMenu) return closeMsgMenu(true);
  if (ui.screen === "newgroup") {
    // Back to the new-chat screen, or to the group's info.
    if (ui.picker?.mode === "create") ui.newChat = true;
    ui.picker = null;
    return redraw();
  }
  if (ui.screen === "contact" || ui.screen === "group") {
    ui.contactOpen = false;
    return redraw();
  }
  if (ui.screen === "chat") return closeChat();
  if (ui.screen === "newchat") {
    ui.newChat = false;
    return redraw();
  }
  if (ui.screen === "requests") {
    ui.requests = false;
    return redraw();
  }
  if (ui.screen === "settings") {
    ui.settings = false;
    ui.logoutConfirm = false;
    return redraw();
  }
  if (ui.screen === "list" && ui.query) {
    ui.query = "";
    $input("search").value = "";
    renderList();
  }
}

/** Ctrl/Cmd+K: to the chat list's search box, from any screen of a linked browser. */
function focusSearch() {
  if (data.snap?.state !== "linked") return;
  if (ui.chat) closeChat();
  ui.newChat = false;
  ui.picker = null;
  ui.settings = false;
  ui.requests = false;
  redraw();
  const search = $input("search");
  search.focus();
  search.select();
}

/**
 * ArrowUp/Down through the visible rows of the list on screen; from the search box into the list.
 * @param {number} delta
 */
function moveInList(delta) {
  const newChat = ui.screen === "newchat";
  const scope = $(newChat ? "screen-newchat" : "screen-list");
  const rows = /** @type {HTMLElement[]} */ ([...scope.querySelectorAll(".chat-open")]).filter((b) => b.offsetParent !== null);
  if (!rows.length) return false;
  const search = $(newChat ? "new-chat-input" : "search");
  const active = document.activeElement;
  const current = active?.closest(".chat-row")?.querySelector(".chat-open");
  const at = rows.indexOf(/** @type {HTMLElement} */ (current));
  if (active === search || at === -1) {
    if (delta > 0) rows[0].focus();
    else return false;
  } else if (at + delta < 0) search.focus();
  else rows[Math.min(rows.length - 1, at + delta)].focus();
  document.activeElement?.scrollIntoView({ block: "nearest" });
  return true;
}

/** @param {KeyboardEvent} e */
export function onKeydown(e) {
  const mod = e.ctrlKey || e.metaKey;
  if (mod && !e.altKey && e.key.toLowerCase() === "k") {
    e.preventDefault();
    focusSearch();
    return;
  }
  if (ui.menu) return menuKeydown(e);
  if (ui.msgMenu) return msgMenuKeydown(e);
  if (e.key === "Escape" && closeChatLayer()) return e.preventDefault();
  if (e.key === "Escape") {
    if (ui.screen === "list" && !ui.query) return; // let the browser close the popup
    e.preventDefault();
    goBack();
    return;
  }
  if ((ui.screen === "list" || ui.screen === "newchat") && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
    const target = /** @type {HTMLElement} */ (e.target);
    const inRows = target.closest?.(".chat-row") || target.id === "search" || target.id === "new-chat-input";
    if (inRows && moveInList(e.key === "ArrowDown" ? 1 : -1)) e.preventDefault();
  }
}
