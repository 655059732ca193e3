// @ts-check
// One message's menu: opening it from the button beside a bubble
// (keyboard: Tab to it, Enter), a right click, or a long press on a touch
// screen; placing it by the bubble; the keyboard inside it; closing it.
// What it offers is msgactions.js's.

import { $, h, label, t } from "../dom.js";
import { icon } from "../icons.js";
import { ui } from "../state.js";
import { menuStep } from "./msgactions.js";
import { messageById } from "./msgparts.js";

/** @typedef {import("../state.js").ChatMessage} ChatMessage */

/** How long a finger rests on a bubble before its menu opens. */
const LONG_PRESS_MS = 480;

/**
 * The button on a bubble that opens its menu.
 * @param {ChatMessage} m
 */
export function menuButton(m) {
  const b = h("button", { class: "msg-more", type: "button", "aria-haspopup": "menu", "aria-expanded": String(ui.msgMenu?.id === m.id) }, icon("chevronDown"));
  label(b, t("messageOptions"));
  b.addEventListener("click", (e) => {
    e.stopPropagation();
    if (ui.msgMenu?.id === m.id) closeMsgMenu(true);
    else openMsgMenu(m.id, b);
  });
  return b;
}

/**
 * A right click or a long press on a bubble opens its menu.
 * @param {HTMLElement} bubble
 * @param {string} id
 */
export function wireBubble(bubble, id) {
  bubble.addEventListener("contextmenu", (e) => {
    // A link or a photo keeps the browser's own menu.
    if (/** @type {HTMLElement} */ (e.target).closest("a, img, video, audio")) return;
    e.preventDefault();
    if (ui.msgMenu?.id !== id) openMsgMenu(id, anchorOf(bubble));
  });
  let timer = 0;
  /** @type {{ x: number, y: number } | null} */
  let start = null;
  const cancel = () => {
    window.clearTimeout(timer);
    start = null;
  };
  bubble.addEventListener("pointerdown", (e) => {
    if (e.pointerType !== "touch") return;
    start = { x: e.clientX, y: e.clientY };
    timer = window.setTimeout(() => {
      start = null;
      swallowNextClick();
      if (ui.msgMenu?.id !== id) openMsgMenu(id, anchorOf(bubble));
    }, LONG_PRESS_MS);
  });
  bubble.addEventListener("pointermove", (e) => {
    if (start && Math.hypot(e.clientX - start.x, e.clientY - start.y) > 8) cancel();
  });
  for (const ev of ["pointerup", "pointercancel", "pointerleave"]) bubble.addEventListener(ev, cancel);
}

/**
 * What a bubble's menu hangs from: its button, or the bubble itself where
 * the button is not shown (touch screens).
 * @param {Element} bubble
 * @returns {HTMLElement}
 */
function anchorOf(bubble) {
  const button = bubble.querySelector(".msg-more");
  return button instanceof HTMLElement && button.offsetParent !== null ? button : /** @type {HTMLElement} */ (bubble);
}

/**
 * Tells a menu button whether its menu is open (a bubble used as the anchor has no such state).
 * @param {HTMLElement} anchor
 * @param {boolean} open
 */
function markOpen(anchor, open) {
  if (anchor.classList.contains("msg-more")) anchor.setAttribute("aria-expanded", String(open));
  anchor.closest(".msg")?.classList.toggle("menu-open", open);
}

/** The finger lifted after a long press makes a click: it must not close the menu it opened. */
function swallowNextClick() {
  /** @param {Event} e */
  const swallow = (e) => {
    e.stopPropagation();
    e.preventDefault();
  };
  window.addEventListener("click", swallow, { capture: true, once: true });
  window.setTimeout(() => window.removeEventListener("click", swallow, { capture: true }), 800);
}

/**
 * Opens a message's menu under (or over) `anchor`.
 * @param {string} id
 * @param {HTMLElement} anchor
 */
export function openMsgMenu(id, anchor) {
  closeMsgMenu(false);
  if (!messageById(id)) return;
  ui.msgMenu = { id, anchor, step: "main" };
  markOpen(anchor, true);
  renderMsgMenu();
}

/**
 * Closes the message menu, if open; puts the keyboard back on its button if asked.
 * @param {boolean} restoreFocus
 */
export function closeMsgMenu(restoreFocus) {
  if (!ui.msgMenu) return;
  const { anchor } = ui.msgMenu;
  ui.msgMenu = null;
  const menu = $("msg-menu");
  menu.hidden = true;
  menu.replaceChildren();
  markOpen(anchor, false);
  if (restoreFocus && anchor.isConnected && anchor.classList.contains("msg-more")) anchor.focus();
}

/**
 * The bubbles were drawn again: the menu hangs from the new button, or
 * closes if its message is gone.
 */
export function reattachMsgMenu() {
  const open = ui.msgMenu;
  if (!open) return;
  const m = messageById(open.id);
  const bubble = document.querySelector(`#messages .msg[data-id="${CSS.escape(open.id)}"] .bubble`);
  if (!m || !bubble) return closeMsgMenu(false);
  const anchor = anchorOf(bubble);
  if (anchor === open.anchor) return;
  open.anchor = anchor;
  markOpen(anchor, true);
}

/** Draws the menu's current step and places it by its anchor. */
function renderMsgMenu() {
  const open = ui.msgMenu;
  if (!open) return;
  const m = messageById(open.id);
  if (!m) return closeMsgMenu(false);
  const menu = $("msg-menu");
  menu.replaceChildren(...menuStep(m, open.step, { go: step, close: closeMsgMenu }));
  label(menu, t("messageOptions"));
  menu.hidden = false;
  place(menu, open.anchor, m.fromMe);
  const first = menu.querySelector("input, .menu-item, .react-btn");
  if (first instanceof HTMLElement) first.focus();
}

/**
 * Puts the menu by its anchor: below it if it fits, else above it, else
 * as low as the window allows; lined up with the bubble's own side.
 * @param {HTMLElement} menu
 * @param {HTMLElement} anchor
 * @param {boolean} mine
 */
function place(menu, anchor, mine) {
  const r = anchor.getBoundingClientRect();
  const side = (anchor.closest(".bubble") ?? anchor).getBoundingClientRect();
  const m = menu.getBoundingClientRect();
  const room = window.innerHeight - 8;
  let top = r.bottom + 4;
  if (top + m.height > room) top = r.top - m.height - 4 >= 8 ? r.top - m.height - 4 : Math.max(8, room - m.height);
  const left = mine ? side.right - m.width : side.left;
  menu.style.top = `${top}px`;
  menu.style.left = `${Math.max(8, Math.min(left, window.innerWidth - m.width - 8))}px`;
}

/** @param {"main" | "emoji" | "delete"} next */
function step(next) {
  if (!ui.msgMenu) return;
  ui.msgMenu.step = next;
  renderMsgMenu();
}

/** Keyboard inside the open menu: arrows, Home / End, Esc (one step back), Tab. @param {KeyboardEvent} e */
export function msgMenuKeydown(e) {
  const menu = $("msg-menu");
  const open = ui.msgMenu;
  if (!open) return;
  if (e.key === "Escape") {
    e.preventDefault();
    if (open.step !== "main") step("main");
    else closeMsgMenu(true);
    return;
  }
  if (document.activeElement?.tagName === "INPUT") return;
  const items = /** @type {HTMLElement[]} */ ([...menu.querySelectorAll(".menu-item, .react-btn")]);
  const at = items.indexOf(/** @type {HTMLElement} */ (document.activeElement));
  if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    e.preventDefault();
    // Down from the reactions goes to the first item below them.
    const rows = items.filter((el) => el.classList.contains("menu-item"));
    const inReacts = at >= 0 && items[at].classList.contains("react-btn");
    if (inReacts) return void (e.key === "ArrowDown" ? rows[0] : rows.at(-1))?.focus();
    items[(at + (e.key === "ArrowDown" ? 1 : -1) + items.length) % items.length]?.focus();
  } else if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
    const reacts = items.filter((el) => el.classList.contains("react-btn"));
    const i = reacts.indexOf(/** @type {HTMLElement} */ (document.activeElement));
    if (i === -1) return;
    e.preventDefault();
    reacts[(i + (e.key === "ArrowRight" ? 1 : -1) + reacts.length) % reacts.length]?.focus();
  } else if (e.key === "Home" || e.key === "End") {
    e.preventDefault();
    items[e.key === "Home" ? 0 : items.length - 1]?.focus();
  } else if (e.key === "Tab") closeMsgMenu(false);
}

export function wireMsgMenu() {
  document.addEventListener("click", (e) => {
    // The path as dispatched: an item that redrew the menu is no longer in it.
    if (ui.msgMenu && !e.composedPath().includes($("msg-menu"))) closeMsgMenu(false);
  });
  $("messages").addEventListener("scroll", () => {
    if (ui.msgMenu && ui.msgMenu.step === "main") closeMsgMenu(false);
  }, { passive: true });
}
