// @ts-check
// One message's menu: the six common reactions and any other emoji, Reply,
// Copy, Edit (own texts, while the core allows it), and Delete, which asks
// "for me" or "for everyone" (own messages, while the core allows it).
// It opens from the button on a bubble (keyboard: Tab to it, Enter), a
// right click, or a long press on a touch screen. What may be offered for
// which message comes from the core with the chat (`actions`).

import { $, h, label, t, toast } from "../dom.js";
import { icon } from "../icons.js";
import { post } from "../port.js";
import { data, myHandle, ui } from "../state.js";
import { startCompose } from "./compose.js";
import { messageById, messageText } from "./msgparts.js";

/** @typedef {import("../state.js").ChatMessage} ChatMessage */

/** The reactions offered first. */
export const QUICK_REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🙏"];

/** How long a finger rests on a bubble before its menu opens. */
const LONG_PRESS_MS = 480;

/**
 * What the core allows for a message now.
 * @param {string} id
 */
function allowed(id) {
  const a = data.history?.chat === ui.chat ? data.history?.actions : null;
  return {
    react: !!a?.reactable.includes(id),
    edit: !!a?.editable.includes(id),
    deleteAll: !!a?.deletable.includes(id),
  };
}

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
  const can = allowed(m.id);
  const step = open.step === "emoji" ? emojiStep(m) : open.step === "delete" ? deleteStep(m, can.deleteAll) : mainStep(m, can);
  menu.replaceChildren(...step);
  label(menu, t("messageOptions"));
  menu.hidden = false;
  place(menu, open.anchor, m.fromMe);
  const first = menu.querySelector("input, .menu-item, .react-btn");
  if (first instanceof HTMLElement) first.focus();
}

/**
 * @param {ChatMessage} m
 * @param {{ react: boolean, edit: boolean, deleteAll: boolean }} can
 * @returns {HTMLElement[]}
 */
function mainStep(m, can) {
  /** @type {HTMLElement[]} */
  const out = [];
  if (can.react) {
    const mine = m.reactions?.[myHandle() ?? ""] ?? null;
    const row = h("div", { class: "react-row", role: "group", "aria-label": t("reactionsLabel") },
      ...QUICK_REACTIONS.map((emoji) => {
        const b = h("button", { class: `react-btn${mine === emoji ? " mine" : ""}`, type: "button", role: "menuitem", "aria-pressed": String(mine === emoji), onclick: () => react(m, emoji) }, emoji);
        label(b, mine === emoji ? t("reactionRemove", emoji) : t("reactWith", emoji));
        return b;
      }),
      (() => {
        const b = h("button", { class: "react-btn react-more", type: "button", role: "menuitem", onclick: () => step("emoji") }, icon("smilePlus"));
        label(b, t("reactOther"));
        return b;
      })());
    out.push(row);
    out.push(item("reply", "reply", t("reply"), () => {
      closeMsgMenu(false);
      startCompose("reply", m.id);
    }));
  }
  const text = messageText(m);
  if (can.react && text && m.body.kind !== "link") {
    out.push(item("copy", "file", t("copyText"), () => {
      closeMsgMenu(true);
      navigator.clipboard.writeText(text).then(() => toast(t("copied")), () => toast(t("copyFailed"), true));
    }));
  }
  if (can.edit) {
    out.push(item("edit", "pencil", t("editMessage"), () => {
      closeMsgMenu(false);
      startCompose("edit", m.id);
    }));
  }
  out.push(item("delete", "trash", t("deleteMessage"), () => step("delete"), true));
  return out;
}

/**
 * Any emoji: typed or pasted (the first character counts).
 * @param {ChatMessage} m
 * @returns {HTMLElement[]}
 */
function emojiStep(m) {
  const input = h("input", { id: "emoji-input", class: "emoji-input", type: "text", maxlength: "16", autocomplete: "off", spellcheck: "false", placeholder: t("emojiPlaceholder") });
  label(input, t("reactOther"));
  const form = h("form", { class: "emoji-form", novalidate: true },
    input,
    h("button", { class: "btn small primary", type: "submit" }, t("react")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const emoji = firstCharacter(input.value);
    if (!emoji) return input.focus();
    react(m, emoji);
  });
  return [h("p", { class: "menu-title" }, t("reactOther")), form];
}

/**
 * "Delete this message?": for everyone (own, while allowed) or for me.
 * @param {ChatMessage} m
 * @param {boolean} forEveryone
 * @returns {HTMLElement[]}
 */
function deleteStep(m, forEveryone) {
  const chat = ui.chat;
  /** @type {HTMLElement[]} */
  const out = [h("p", { class: "menu-title", id: "delete-title" }, t("deleteConfirm")),
    h("p", { class: "menu-note muted small" }, t(forEveryone ? "deleteConfirmBodyOwn" : "deleteConfirmBody"))];
  if (forEveryone) {
    out.push(item("delete-everyone", "trash", t("deleteForEveryone"), () => {
      closeMsgMenu(false);
      if (chat) post({ kind: "deleteForEveryone", chat, id: m.id });
    }, true));
  }
  out.push(item("delete-me", "trash", t("deleteForMe"), () => {
    closeMsgMenu(false);
    if (chat) post({ kind: "deleteForMe", chat, ids: [m.id] });
    toast(t("deletedForMe"));
  }, true));
  out.push(item("cancel", "close", t("cancel"), () => step("main")));
  return out;
}

/**
 * One item of the menu.
 * @param {string} action
 * @param {import("../icons.js").IconName} iconName
 * @param {string} text
 * @param {() => void} onclick
 * @param {boolean} [danger]
 */
function item(action, iconName, text, onclick, danger = false) {
  return h("button", { class: `menu-item${danger ? " danger" : ""}`, type: "button", role: "menuitem", "data-action": action, onclick }, icon(iconName), h("span", { class: "menu-text" }, text));
}

/** @param {"main" | "emoji" | "delete"} next */
function step(next) {
  if (!ui.msgMenu) return;
  ui.msgMenu.step = next;
  renderMsgMenu();
}

/**
 * Reacts with `emoji`, or takes the reaction back if it is the one given.
 * @param {ChatMessage} m
 * @param {string} emoji
 */
function react(m, emoji) {
  const chat = ui.chat;
  const mine = m.reactions?.[myHandle() ?? ""] ?? null;
  closeMsgMenu(true);
  if (chat) post({ kind: "react", chat, id: m.id, emoji: mine === emoji ? "" : emoji });
}

/**
 * The first character people see in `text` (an emoji with its modifiers is one).
 * @param {string} text
 */
function firstCharacter(text) {
  const trimmed = text.trim();
  if (!trimmed) return "";
  const first = new Intl.Segmenter(undefined, { granularity: "grapheme" }).segment(trimmed)[Symbol.iterator]().next().value;
  return first?.segment ?? "";
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
