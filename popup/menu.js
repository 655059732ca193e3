// @ts-check
// The row menu: pin, mute, archive or share one chat. A flag changes by
// command (`setFlag`: turn this one flag on or off); the worker applies it
// to the chat as the core holds it, so a stale snapshot cannot undo another
// change.

import { $, label, t, toast } from "./dom.js";
import { post } from "./port.js";
import { shareTab } from "./screens/chat.js";
import { findChat, nameOf, ui } from "./state.js";

/** @typedef {import("../common/messages.js").ChatFlag} ChatFlag */
/** @typedef {"pin" | "mute" | "archive" | "share"} MenuAction */

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
  label(menu, t("chatOptionsFor", nameOf(handle)));
  ui.menu = { handle, anchor };
  anchor.setAttribute("aria-expanded", "true");
  anchor.closest(".chat-row")?.classList.add("menu-open");
  menu.hidden = false;
  const r = anchor.getBoundingClientRect();
  const m = menu.getBoundingClientRect();
  let top = r.bottom + 4;
  if (top + m.height > window.innerHeight - 8) top = Math.max(8, r.top - m.height - 4);
  const left = Math.max(8, Math.min(r.right - m.width, window.innerWidth - m.width - 8));
  menu.style.top = `${top}px`;
  menu.style.left = `${left}px`;
  /** @type {HTMLElement | null} */ (menu.querySelector(".menu-item"))?.focus();
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
  anchor.setAttribute("aria-expanded", "false");
  anchor.closest(".chat-row")?.classList.remove("menu-open");
  if (restoreFocus && anchor.isConnected) anchor.focus();
}

/** @param {string | undefined} action */
function onMenuAction(action) {
  const handle = ui.menu?.handle;
  closeMenu(true);
  if (!handle) return;
  if (action === "share") return shareTab(handle);
  if (action !== "pin" && action !== "mute" && action !== "archive") return;
  const item = FLAG_ITEMS[action];
  const on = !isOn(handle, item.flag);
  post({ kind: "setFlag", chat: handle, flag: item.flag, on });
  toast(t(on ? item.didOn : item.didOff, nameOf(handle)));
}

/** Keyboard inside the open menu: arrows, Home / End, Esc, Tab. @param {KeyboardEvent} e */
export function menuKeydown(e) {
  const items = /** @type {HTMLElement[]} */ ([...$("row-menu").querySelectorAll(".menu-item")]);
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
    item.addEventListener("click", () => onMenuAction(/** @type {HTMLElement} */ (item).dataset.action));
  }
  document.addEventListener("click", (e) => {
    if (ui.menu && !$("row-menu").contains(/** @type {Node} */ (e.target))) closeMenu(false);
  });
  $("list-scroll").addEventListener("scroll", () => closeMenu(false), { passive: true });
}
