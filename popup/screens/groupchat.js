// @ts-check
// What a group's chat adds to the chat view (chat.js): another member's
// name above their bubbles, in the colour of their handle; the group's
// changes as lines across the chat; and behind an own message's time and
// ticks, who has it ("read by", asked of the worker when opened).

import { h, hueOf, t } from "../dom.js";
import { fullTime } from "../format.js";
import { post } from "../port.js";
import { data, nameOf, redraw, ui } from "../state.js";
import { ticks } from "./ticks.js";

/** @typedef {import("../state.js").ChatMessage} ChatMessage */
/** @typedef {import("../state.js").GroupInfo} GroupInfo */
/** @typedef {ChatMessage["status"]} Status */

/**
 * A change of a group, as a line across the chat ("Alice added Bob").
 * @param {string} text
 * @param {ChatMessage} m
 */
export function eventLine(text, m) {
  return h("div", { class: "event-line", role: "note", "data-id": m.id }, h("span", { title: fullTime(m.timeMs) }, text));
}

/**
 * The sender's name above a bubble: the group's name for them (the core's),
 * in their colour.
 * @param {string} handle
 * @param {GroupInfo | null} group
 */
export function senderLabel(handle, group) {
  const name = group?.members.find((p) => p.handle === handle)?.name ?? nameOf(handle);
  return h("span", { class: "sender", style: `--hue:${hueOf(handle)}`, "data-handle": handle }, name);
}

/**
 * An own group message's time and ticks; once the server has it, a button
 * that opens who has it.
 * @param {ChatMessage} m
 * @param {HTMLElement} time
 * @returns {HTMLElement[]}
 */
export function ownGroupMeta(m, time) {
  if (m.status === "pending" || m.status === "failed") return [h("span", { class: "msg-meta" }, time, ticks(m.status))];
  const open = ui.receiptsFor === m.id;
  const meta = h("button", { class: "msg-meta meta-btn", type: "button", "aria-expanded": String(open), title: t("messageInfo"), onclick: () => toggle(m.id) }, time, ticks(m.status));
  return open ? [meta, readBy(m.id)] : [meta];
}

/**
 * Opens (asking the worker) or closes an own group message's "read by".
 * @param {string} id
 */
function toggle(id) {
  ui.receiptsFor = ui.receiptsFor === id ? null : id;
  if (ui.receiptsFor && ui.chat) post({ kind: "messageReceipts", chat: ui.chat, id });
  redraw();
}

/**
 * Who has an own group message: read, delivered, not yet — each with the
 * ticks they gave it.
 * @param {string} id
 */
function readBy(id) {
  const got = data.receipts?.id === id ? data.receipts.receipts : null;
  const panel = h("div", { class: "read-by", role: "group", "aria-label": t("messageInfo") });
  if (!got) {
    panel.append(h("p", { class: "muted small" }, t("loadingMessages")));
    return panel;
  }
  /** @type {[Status, string][]} */
  const sections = [["read", "readBy"], ["delivered", "deliveredTo"], ["sent", "notDeliveredYet"]];
  for (const [status, key] of sections) {
    const who = got.filter((r) => r.status === status);
    if (!who.length) continue;
    panel.append(h("p", { class: "read-by-title", "data-status": status }, ticks(status), t(key)),
      h("ul", { class: "read-by-list", "data-status": status }, ...who.map((r) => h("li", { "data-handle": r.handle }, r.name))));
  }
  return panel;
}
