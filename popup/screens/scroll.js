// @ts-check
// Where the open chat's messages are scrolled after each render (chat.js
// draws them): on open, at the "N unread messages" line (or the bottom);
// at a message a search result or a quote points to, highlighted; to the
// bottom when a message arrives; otherwise where the user left them. A
// chat at its bottom stays there while photos and cards fill in. The
// keyboard stays on the bubble's control it was on.

import { $ } from "../dom.js";
import { ui } from "../state.js";
import { jumpTo } from "./msgparts.js";

/** @typedef {import("../state.js").ChatMessage} ChatMessage */

/** A bubble's controls the keyboard can rest on (their classes). */
const CONTROLS = ["msg-more", "quote", "msg-edited", "meta-btn", "reaction"];

/** @typedef {{ atBottom: boolean, top: number, focus: string | null }} ScrollState */

/**
 * Where the list stood before a render: at its bottom as the user left it
 * (bubbles may have grown since the last render, a photo decoded, before
 * anything scrolled), its offset, and the bubble control with the
 * keyboard (a selector that finds it again).
 * @param {HTMLElement} box
 * @returns {ScrollState}
 */
export function scrollState(box) {
  const atBottom = box.dataset.pinned ? box.dataset.pinned === "true" : box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  return { atBottom, top: box.scrollTop, focus: focusedControl(box) };
}

/**
 * The bubble control that has the keyboard, as a selector.
 * @param {HTMLElement} box
 */
function focusedControl(box) {
  const el = document.activeElement;
  if (!(el instanceof HTMLElement) || !box.contains(el)) return null;
  const id = el.closest(".msg")?.getAttribute("data-id");
  const cls = CONTROLS.find((c) => el.classList.contains(c));
  if (!id || !cls) return null;
  const emoji = cls === "reaction" ? `[data-emoji="${CSS.escape(el.dataset.emoji ?? "")}"]` : "";
  return `.msg[data-id="${CSS.escape(id)}"] .${cls}${emoji}`;
}

/**
 * Scrolls the freshly drawn list of `chat`.
 * @param {HTMLElement} box
 * @param {string} chat
 * @param {ChatMessage[] | null} messages null while they are on their way
 * @param {ScrollState} before
 */
export function placeScroll(box, chat, messages, before) {
  if (before.focus) /** @type {HTMLElement | null} */ (box.querySelector(before.focus))?.focus({ preventScroll: true });
  const last = messages?.at(-1)?.id ?? null;
  const count = messages?.length ?? 0;
  const fresh = ui.shown.chat !== chat || ui.shown.lastId !== last || ui.shown.count !== count;
  let pinned = fresh || before.atBottom;
  const line = box.querySelector("#unread-line");
  const older = ui.older?.chat === chat ? box.querySelector(`.msg[data-id="${CSS.escape(ui.older.id)}"]`) : null;
  if (older instanceof HTMLElement && ui.older) {
    // Earlier messages came in above: the one that was on top stays put.
    box.scrollTop = older.offsetTop - ui.older.offset;
    ui.older = null;
    pinned = false;
  } else if (messages && !ui.shown.placed && line instanceof HTMLElement) {
    box.scrollTop = line.offsetTop - 8;
    pinned = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  } else box.scrollTop = pinned ? box.scrollHeight : before.top;
  keepPinned(box, pinned);
  ui.shown = { chat, lastId: last, count, placed: ui.shown.placed || !!messages };
  // A search result: to it, highlighted.
  if (messages && ui.focus?.chat === chat) {
    const id = ui.focus.id;
    ui.focus = null;
    jumpTo(id);
  }
}

/** Watches the bubbles of the chat on show for size changes. */
const resized = new ResizeObserver(() => {
  const box = $("messages");
  if (box.dataset.pinned === "true") box.scrollTop = box.scrollHeight;
});

/**
 * A chat shown at its bottom stays there while its photos, voice notes and
 * file cards fill in (they grow their bubbles after the render); a chat the
 * user scrolled up in stays where it is. The element remembers which
 * (`data-pinned`), set by each render and by the user's scrolling.
 * @param {HTMLElement} box
 * @param {boolean} pinned
 */
function keepPinned(box, pinned) {
  box.dataset.pinned = String(pinned);
  resized.disconnect();
  for (const bubble of box.children) resized.observe(bubble);
  if (box.dataset.pinning) return;
  box.dataset.pinning = "1";
  box.addEventListener("scroll", () => {
    box.dataset.pinned = String(box.scrollHeight - box.scrollTop - box.clientHeight < 40);
  }, { passive: true });
}
