// @ts-check
// The row menu: pin, mute, archive, mark as unread (or read) or share one
// chat; from the chat's header also its disappearing-messages timer (a
// second menu of four choices). A flag changes by command (`setFlag`: turn
// this one flag on or off); the worker applies it to the chat as the core
// holds it, so a stale snapshot cannot undo another change.

import { $, label, t, toast } from "./dom.js";
import { timerLabel } from "./format.js";
import { post } from "./port.js";
import { shareTab } from "./screens/chat.js";
import { findChat, nameOf, openGroup, ui } from "./state.js";

/** @typedef {import("../common/messages.js").ChatFlag} ChatFlag */
/** @typedef {"pin" | "mute" | "archive" | "unread" | "disappear" | "share"} MenuAction */

/** Which flag each menu item turns, and the strings for on / off. */
const FLAG_ITEMS = /** @type {const} */ ({
  pin: { flag: "pinned", turnOn: "pin", turnOff: "unpin", didOn: "toastPinned", didOff: "toastUnpinned" },
  mute: { flag: "muted", turnOn: "mute", turnOff: "unmute", didOn: "toastMuted", didOff: "toastUnmuted" },
  archive: { flag: "archived", turnOn: "archive", turnOff: "unarchive", didOn: "toastArchived", didOff: "toastUnarchived" },
});

/**
 * Whether a flag is on for a chat, as the last snapshot shows it.
 * @param {string} handle
 * @param {ChatFlag} flag
 */
function isOn(handle, flag) {
  return !!findChat(handle)?.[flag];
}

/**
 * Whether a chat shows as unread (messages unread, or marked).
 * @param {string} handle
 */
function looksUnread(handle) {
  const c = findChat(handle);
  return !!c && (c.unread > 0 || c.markedUnread);
}

/** The menu on show: the timer's once it is open, else the row menu. */
const shownMenu = () => ($("timer-menu").hidden ? $("row-menu") : $("timer-menu"));

/**
 * Opens the menu for a chat under `anchor`, or closes it if it is open there.
 * @param {string} handle
 * @param {HTMLElement} anchor
 */
export function toggleMenu(handle, anchor) {
  if (ui.menu?.handle === handle && ui.menu.anchor === anchor) closeMenu(true);
  else openMenu(handle, anchor);
}

/**
 * @param {string} handle
 * @param {HTMLElement} anchor
 */
function openMenu(handle, anchor) {
  closeMenu(false);
  const menu = $("row-menu");
  for (const [action, item] of Object.entries(FLAG_ITEMS)) {
    const text = menu.querySelector(`[data-action="${action}"] .menu-text`);
    if (text) text.textContent = t(isOn(handle, item.flag) ? item.turnOff : item.turnOn);
  }
  setItem(menu, "unread", looksUnread(handle) ? t("markRead") : t("markUnread"));
  // The timer is set from the chat's own menu, where it can be written to.
  const group = openGroup();
  const timer = anchor.id === "chat-more" && !(group && !group.amMember);
  const disappear = /** @type {HTMLElement} */ (menu.querySelector('[data-action="disappear"]'));
  disappear.hidden = !timer;
  if (timer) setItem(menu, "disappear", t("disappearingItem", timerLabel(findChat(handle)?.disappearSecs ?? 0)));
  label(menu, t("chatOptionsFor", nameOf(handle)));
  ui.menu = { handle, anchor };
  anchor.setAttribute("aria-expanded", "true");
  anchor.closest(".chat-row")?.classList.add("menu-open");
  menu.hidden = false;
  place(menu, anchor);
  /** @type {HTMLElement | null} */ (menu.querySelector(".menu-item"))?.focus();
}

/**
 * Sets the text of one of the menu's items.
 * @param {HTMLElement} menu
 * @param {MenuAction} action
 * @param {string} text
 */
function setItem(menu, action, text) {
  const el = menu.querySelector(`[data-action="${action}"] .menu-text`);
  if (el) el.textContent = text;
}

/**
 * Puts a menu under its anchor (over it if there is no room below), its right edges aligned.
 * @param {HTMLElement} menu
 * @param {HTMLElement} anchor
 */
function place(menu, anchor) {
  const r = anchor.getBoundingClientRect();
  const m = menu.getBoundingClientRect();
  let top = r.bottom + 4;
  if (top + m.height > window.innerHeight - 8) top = Math.max(8, r.top - m.height - 4);
  const left = Math.max(8, Math.min(r.right - m.width, window.innerWidth - m.width - 8));
  menu.style.top = `${top}px`;
  menu.style.left = `${left}px`;
}

/**
 * The disappearing-messages choices for the chat whose menu is open, the
 * current one checked.
 * @param {string} handle
 * @param {HTMLElement} anchor
 */
function openTimerMenu(handle, anchor) {
  $("row-menu").hidden = true;
  const menu = $("timer-menu");
  const secs = findChat(handle)?.disappearSecs ?? 0;
  for (const item of menu.querySelectorAll(".menu-item")) {
    item.setAttribute("aria-checked", String(Number(/** @type {HTMLElement} */ (item).dataset.seconds) === secs));
  }
  label(menu, t("disappearingTitle"));
  menu.hidden = false;
  place(menu, anchor);
  /** @type {HTMLElement | null} */ (menu.querySelector('.menu-item[aria-checked="true"]') ?? menu.querySelector(".menu-item"))?.focus();
}

/**
 * Closes the menu, if open; puts the keyboard back on its button if asked.
 * @param {boolean} restoreFocus
 */
export function closeMenu(restoreFocus) {
  if (!ui.menu) return;
  const { anchor } = ui.menu;
  ui.menu = null;
  $("row-menu").hidden = true;
  $("timer-menu").hidden = true;
  anchor.setAttribute("aria-expanded", "false");
  anchor.closest(".chat-row")?.classList.remove("menu-open");
  if (restoreFocus && anchor.isConnected) anchor.focus();
}

/** @param {string | undefined} action */
function onMenuAction(action) {
  const handle = ui.menu?.handle;
  if (handle && ui.menu && action === "disappear") return openTimerMenu(handle, ui.menu.anchor);
  closeMenu(true);
  if (!handle) return;
  if (action === "share") return shareTab(handle);
  if (action === "unread") {
    // Reading it clears the mark; marking it sets the flag.
    const read = looksUnread(handle);
    if (read) post({ kind: "markRead", chat: handle });
    else post({ kind: "setFlag", chat: handle, flag: "unread", on: true });
    return toast(t(read ? "toastMarkedRead" : "toastMarkedUnread", nameOf(handle)));
  }
  if (action !== "pin" && action !== "mute" && action !== "archive") return;
  const item = FLAG_ITEMS[action];
  const on = !isOn(handle, item.flag);
  post({ kind: "setFlag", chat: handle, flag: item.flag, on });
  toast(t(on ? item.didOn : item.didOff, nameOf(handle)));
}

/**
 * A timer was chosen for the chat whose menu is open.
 * @param {number} seconds
 */
function onTimerChosen(seconds) {
  const handle = ui.menu?.handle;
  closeMenu(true);
  if (!handle || (findChat(handle)?.disappearSecs ?? 0) === seconds) return;
  post({ kind: "setDisappearing", chat: handle, seconds });
  toast(seconds ? t("toastDisappearOn", timerLabel(seconds)) : t("toastDisappearOff"));
}

/** Keyboard inside the open menu: arrows, Home / End, Esc, Tab. @param {KeyboardEvent} e */
export function menuKeydown(e) {
  const items = /** @type {HTMLElement[]} */ ([...shownMenu().querySelectorAll(".menu-item:not([hidden])")]);
  const at = items.indexOf(/** @type {HTMLElement} */ (document.activeElement));
  if (e.key === "Escape") {
    e.preventDefault();
    closeMenu(true);
  } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    e.preventDefault();
    items[(at + (e.key === "ArrowDown" ? 1 : -1) + items.length) % items.length]?.focus();
  } else if (e.key === "Home" || e.key === "End") {
    e.preventDefault();
    items[e.key === "Home" ? 0 : items.length - 1]?.focus();
  } else if (e.key === "Tab") closeMenu(false);
}

export function wireMenu() {
  for (const item of $("row-menu").querySelectorAll(".menu-item")) {
    item.addEventListener("click", (e) => {
      e.stopPropagation();
      onMenuAction(/** @type {HTMLElement} */ (item).dataset.action);
    });
  }
  for (const item of $("timer-menu").querySelectorAll(".menu-item")) {
    item.addEventListener("click", () => onTimerChosen(Number(/** @type {HTMLElement} */ (item).dataset.seconds)));
  }
  document.addEventListener("click", (e) => {
    if (ui.menu && !shownMenu().contains(/** @type {Node} */ (e.target))) closeMenu(false);
  });
  $("list-scroll").addEventListener("scroll", () => closeMenu(false), { passive: true });
}
