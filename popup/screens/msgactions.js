// @ts-check
// What a message's menu offers (msgmenu.js opens, places and closes it):
// the six common reactions and any other emoji, Reply, Copy, Edit (own
// texts, while the core allows it), and Delete, which asks "for me" or
// "for everyone" (own messages, while the core allows it). What may be
// offered for which message comes from the core with the chat (`actions`).

import { h, label, t, toast } from "../dom.js";
import { icon } from "../icons.js";
import { post } from "../port.js";
import { data, myHandle, ui } from "../state.js";
import { startCompose } from "./compose.js";
import { messageText } from "./msgparts.js";

/** @typedef {import("../state.js").ChatMessage} ChatMessage */
/** The menu's steps: the actions, the box for any emoji, the delete question. @typedef {"main" | "emoji" | "delete"} Step */
/** What a step may do with the menu. @typedef {{ go: (step: Step) => void, close: (restoreFocus: boolean) => void }} MenuControl */

/** The reactions offered first. */
export const QUICK_REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🙏"];

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
 * Reactions, Reply, Copy, Edit, Delete….
 * @param {ChatMessage} m
 * @param {{ react: boolean, edit: boolean, deleteAll: boolean }} can
 * @param {MenuControl} ctl
 * @returns {HTMLElement[]}
 */
function mainStep(m, can, ctl) {
  /** @type {HTMLElement[]} */
  const out = [];
  if (can.react) {
    const mine = m.reactions?.[myHandle() ?? ""] ?? null;
    const row = h("div", { class: "react-row", role: "group", "aria-label": t("reactionsLabel") },
      ...QUICK_REACTIONS.map((emoji) => {
        const b = h("button", { class: `react-btn${mine === emoji ? " mine" : ""}`, type: "button", role: "menuitem", "aria-pressed": String(mine === emoji), onclick: () => react(m, emoji, ctl) }, emoji);
        label(b, mine === emoji ? t("reactionRemove", emoji) : t("reactWith", emoji));
        return b;
      }),
      (() => {
        const b = h("button", { class: "react-btn react-more", type: "button", role: "menuitem", onclick: () => ctl.go("emoji") }, icon("smilePlus"));
        label(b, t("reactOther"));
        return b;
      })());
    out.push(row);
    out.push(item("reply", "reply", t("reply"), () => {
      ctl.close(false);
      startCompose("reply", m.id);
    }));
  }
  const text = messageText(m);
  if (can.react && text && m.body.kind !== "link") {
    out.push(item("copy", "file", t("copyText"), () => {
      ctl.close(true);
      navigator.clipboard.writeText(text).then(() => toast(t("copied")), () => toast(t("copyFailed"), true));
    }));
  }
  if (can.edit) {
    out.push(item("edit", "pencil", t("editMessage"), () => {
      ctl.close(false);
      startCompose("edit", m.id);
    }));
  }
  out.push(item("delete", "trash", t("deleteMessage"), () => ctl.go("delete"), true));
  return out;
}

/**
 * Any emoji: typed or pasted (the first character counts).
 * @param {ChatMessage} m
 * @param {MenuControl} ctl
 * @returns {HTMLElement[]}
 */
function emojiStep(m, ctl) {
  const input = h("input", { id: "emoji-input", class: "emoji-input", type: "text", maxlength: "16", autocomplete: "off", spellcheck: "false", placeholder: t("emojiPlaceholder") });
  label(input, t("reactOther"));
  const form = h("form", { class: "emoji-form", novalidate: true },
    input,
    h("button", { class: "btn small primary", type: "submit" }, t("react")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const emoji = firstCharacter(input.value);
    if (!emoji) return input.focus();
    react(m, emoji, ctl);
  });
  return [h("p", { class: "menu-title" }, t("reactOther")), form];
}

/**
 * "Delete this message?": for everyone (own, while allowed) or for me.
 * @param {ChatMessage} m
 * @param {boolean} forEveryone
 * @param {MenuControl} ctl
 * @returns {HTMLElement[]}
 */
function deleteStep(m, forEveryone, ctl) {
  const chat = ui.chat;
  /** @type {HTMLElement[]} */
  const out = [h("p", { class: "menu-title", id: "delete-title" }, t("deleteConfirm")),
    h("p", { class: "menu-note muted small" }, t(forEveryone ? "deleteConfirmBodyOwn" : "deleteConfirmBody"))];
  if (forEveryone) {
    out.push(item("delete-everyone", "trash", t("deleteForEveryone"), () => {
      ctl.close(false);
      if (chat) post({ kind: "deleteForEveryone", chat, id: m.id });
    }, true));
  }
  out.push(item("delete-me", "trash", t("deleteForMe"), () => {
    ctl.close(false);
    if (chat) post({ kind: "deleteForMe", chat, ids: [m.id] });
    toast(t("deletedForMe"));
  }, true));
  out.push(item("cancel", "close", t("cancel"), () => ctl.go("main")));
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

/**
 * Reacts with `emoji`, or takes the reaction back if it is the one given.
 * @param {ChatMessage} m
 * @param {string} emoji
 * @param {MenuControl} ctl
 */
function react(m, emoji, ctl) {
  const chat = ui.chat;
  const mine = m.reactions?.[myHandle() ?? ""] ?? null;
  ctl.close(true);
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
 * What the menu shows at `step` for message `m`.
 * @param {ChatMessage} m
 * @param {Step} step
 * @param {MenuControl} ctl
 * @returns {HTMLElement[]}
 */
export function menuStep(m, step, ctl) {
  const can = allowed(m.id);
  if (step === "emoji") return emojiStep(m, ctl);
  if (step === "delete") return deleteStep(m, can.deleteAll, ctl);
  return mainStep(m, can, ctl);
}
