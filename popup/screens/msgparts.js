// @ts-check
// What everyday messaging adds to a bubble (chat.js draws the rest): the
// quote of the message a reply answers (a click goes to it), the
// reactions as chips with counts (a click on one's own takes it back),
// "edited" with the earlier versions behind it, the text of a message
// deleted for everyone, and the "N unread messages" line.

import { h, hueOf, label, t, toast } from "../dom.js";
import { fullTime, timeOfDay } from "../format.js";
import { icon } from "../icons.js";
import { post } from "../port.js";
import { data, myHandle, nameOf, redraw, ui } from "../state.js";

/** @typedef {import("../state.js").ChatMessage} ChatMessage */
/** @typedef {import("../state.js").GroupInfo} GroupInfo */

/** How long a message stays highlighted after a jump to it. */
const FLASH_MS = 1600;

/**
 * The name a message's author goes by here: "You", a group's name for a
 * member, or the contact's.
 * @param {string} handle
 * @param {GroupInfo | null} group
 */
export function authorName(handle, group) {
  if (handle === myHandle()) return t("you");
  return group?.members.find((p) => p.handle === handle)?.name ?? nameOf(handle);
}

/**
 * The quote at the top of a reply: who wrote the answered message and the
 * start of it, as the sender quoted it. A click scrolls to it.
 * @param {ChatMessage} m
 * @param {GroupInfo | null} group
 */
export function quoteView(m, group) {
  const q = m.replyTo;
  if (!q) return null;
  const who = authorName(q.author, group);
  const b = h("button", { class: "quote", type: "button", style: `--hue:${hueOf(q.author)}`, "data-reply-to": q.id, onclick: () => jumpTo(q.id) },
    h("span", { class: "quote-author" }, who),
    // The core drops the words of a quoted message deleted for everyone.
    q.text ? h("span", { class: "quote-text" }, q.text) : h("span", { class: "quote-text deleted" }, t("messageDeleted")));
  label(b, t("goToQuoted", who));
  return b;
}

/**
 * Scrolls the open chat to a message and highlights it for a moment.
 * @param {string} id
 * @returns {boolean} whether the message is in the chat
 */
export function jumpTo(id) {
  const el = document.querySelector(`#messages [data-id="${CSS.escape(id)}"]`);
  if (!(el instanceof HTMLElement)) {
    toast(t("quotedGone"));
    return false;
  }
  const box = /** @type {HTMLElement} */ (el.closest(".messages"));
  box.dataset.pinned = "false";
  el.scrollIntoView({ block: "center" });
  ui.flash = { id, at: Date.now() };
  el.style.removeProperty("--flash-delay");
  el.classList.remove("flash");
  void el.offsetWidth; // restart the animation
  el.classList.add("flash");
  return true;
}

/**
 * How long a message has been lit up (it goes on across redraws), or -1.
 * @param {string} id
 */
export function flashedFor(id) {
  if (ui.flash?.id !== id) return -1;
  const ms = Date.now() - ui.flash.at;
  return ms < FLASH_MS ? ms : -1;
}

/**
 * The reactions under a bubble: one chip per emoji with how many chose it;
 * the chip holding this account's reaction is pressed, and a click on it
 * takes the reaction back (on another, reacts with that emoji instead:
 * one reaction per person).
 * @param {ChatMessage} m
 * @param {GroupInfo | null} group
 */
export function reactionsView(m, group) {
  const entries = Object.entries(m.reactions ?? {});
  if (!entries.length) return null;
  const me = myHandle();
  /** @type {Map<string, string[]>} */
  const byEmoji = new Map();
  for (const [who, emoji] of entries) byEmoji.set(emoji, [...(byEmoji.get(emoji) ?? []), who]);
  const chips = [...byEmoji].map(([emoji, who]) => {
    const mine = !!me && who.includes(me);
    const names = who.map((w) => authorName(w, group)).join(", ");
    const chip = h("button", {
      class: `reaction${mine ? " mine" : ""}`,
      type: "button",
      "aria-pressed": String(mine),
      "data-emoji": emoji,
      onclick: () => ui.chat && post({ kind: "react", chat: ui.chat, id: m.id, emoji: mine ? "" : emoji }),
    }, h("span", { class: "reaction-emoji" }, emoji), h("span", { class: "reaction-count" }, String(who.length)));
    label(chip, mine ? t("reactionMine", emoji, names) : t("reactionOthers", emoji, names));
    return chip;
  });
  return h("div", { class: "reactions", role: "group", "aria-label": t("reactionsLabel") }, ...chips);
}

/**
 * "edited" beside the time of an edited message: a button that shows the
 * earlier versions.
 * @param {ChatMessage} m
 */
export function editedButton(m) {
  if (!m.editedMs) return null;
  const open = ui.historyFor === m.id;
  const b = h("button", { class: "msg-edited", type: "button", "aria-expanded": String(open), title: t("editedAt", fullTime(m.editedMs)), onclick: () => toggleHistory(m.id) }, t("edited"));
  return b;
}

/** @param {string} id */
function toggleHistory(id) {
  ui.historyFor = ui.historyFor === id ? null : id;
  redraw();
}

/**
 * The earlier versions of an edited message, oldest first, each with when
 * it was replaced (shown while "edited" is open).
 * @param {ChatMessage} m
 */
export function historyPanel(m) {
  if (ui.historyFor !== m.id || !m.edits?.length) return null;
  return h("div", { class: "edit-history", role: "group", "aria-label": t("earlierVersions") },
    h("p", { class: "edit-history-title" }, t("earlierVersions")),
    h("ol", { class: "edit-history-list" }, ...m.edits.map((e) => h("li", {},
      h("span", { class: "edit-old" }, e.text),
      h("time", { class: "edit-when", datetime: new Date(e.replacedMs).toISOString(), title: fullTime(e.replacedMs) }, t("replacedAt", timeOfDay(e.replacedMs)))))));
}

/** What a message deleted for everyone says, in italics. */
export function deletedView() {
  return h("p", { class: "deleted-text" }, icon("ban"), h("span", {}, t("messageDeleted")));
}

/**
 * The line above the first unread message.
 * @param {number} count
 */
export function unreadLine(count) {
  return h("div", { class: "unread-line", role: "separator", id: "unread-line" }, h("span", {}, count === 1 ? t("unreadOne") : t("unreadMany", count)));
}

/**
 * The message (of the open chat's history) with this id.
 * @param {string} id
 */
export function messageById(id) {
  return data.history?.chat === ui.chat ? data.history?.messages.find((m) => m.id === id) ?? null : null;
}

/**
 * What a message says, for the composer's quote and edit box: its text, or
 * a file's caption.
 * @param {ChatMessage} m
 */
export function messageText(m) {
  const b = m.body;
  if (b.kind === "text") return b.body;
  if (b.kind === "file") return b.caption;
  if (b.kind === "link") return b.title || b.url;
  return "";
}
