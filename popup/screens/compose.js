// @ts-check
// The composer's modes and its text. Answering a message shows a quote of
// it above the composer (× cancels); editing an own message puts its text
// in the composer while what was typed before waits aside. The unsent
// text of each chat is the core's (`setDraft`, synced to this account's
// other devices): it goes there after a pause in typing, when the chat
// closes, and when the popup or the page goes away.

import { $, $button, $textarea, label, t } from "../dom.js";
import { icon } from "../icons.js";
import { post } from "../port.js";
import { data, findChat, openGroup, ui } from "../state.js";
import { hasDraft } from "./files.js";
import { authorName, messageById, messageText } from "./msgparts.js";

/** @typedef {import("../state.js").ChatMessage} ChatMessage */

/** How long typing pauses before the text goes to the core. */
const DRAFT_PAUSE_MS = 600;

/** Text typed and not yet sent to the core, by chat: the timer that sends it. @type {Map<string, number>} */
const pending = new Map();
/** What the composer held before an edit borrowed it. @type {string | null} */
let aside = null;

/**
 * What the composer of a chat starts with: what was typed here, or the
 * core's draft (typed before the popup closed, or on another device).
 * @param {string} chat
 */
export function composerTextFor(chat) {
  return ui.drafts.get(chat) ?? findChat(chat)?.draft ?? "";
}

/**
 * The composer's text changed: kept here at once, and by the core after a pause.
 * @param {string} chat
 * @param {string} text
 */
export function draftTyped(chat, text) {
  ui.drafts.set(chat, text);
  window.clearTimeout(pending.get(chat));
  pending.set(chat, window.setTimeout(() => saveDraft(chat), DRAFT_PAUSE_MS));
}

/**
 * Sends a chat's typed text to the core (unless the core has it already).
 * @param {string} chat
 */
function saveDraft(chat) {
  window.clearTimeout(pending.get(chat));
  pending.delete(chat);
  const text = ui.drafts.get(chat) ?? "";
  if (text === (findChat(chat)?.draft ?? "")) return;
  post({ kind: "setDraft", chat, text });
}

/** Sends every chat's typed text to the core now (a chat closes, the popup goes away). */
export function flushDrafts() {
  for (const chat of [...pending.keys()]) saveDraft(chat);
}

/**
 * The composer's text was sent: the core drops its draft with the message.
 * @param {string} chat
 */
export function draftSent(chat) {
  window.clearTimeout(pending.get(chat));
  pending.delete(chat);
  ui.drafts.delete(chat);
}

/**
 * Answers (`reply`) or edits (`edit`) a message of the open chat with the composer.
 * @param {"reply" | "edit"} mode
 * @param {string} id
 */
export function startCompose(mode, id) {
  const chat = ui.chat;
  const m = messageById(id);
  if (!chat || !m) return;
  const c = $textarea("composer");
  const editing = ui.compose?.mode === "edit";
  if (mode === "edit") {
    if (!editing) aside = c.value;
    c.value = messageText(m);
  } else if (editing) {
    c.value = aside ?? "";
    aside = null;
  }
  ui.compose = { mode, chat, id };
  renderComposeBar();
  autosize();
  c.focus();
  c.setSelectionRange(c.value.length, c.value.length);
}

/** Back to writing a new message (an edit gives the composer its earlier text back). */
export function cancelCompose() {
  const was = ui.compose;
  if (!was) return;
  ui.compose = null;
  if (was.mode === "edit") {
    $textarea("composer").value = aside ?? "";
    aside = null;
    autosize();
  }
  renderComposeBar();
}

/** The chat closes: a reply or an edit under way is dropped (the composer is refilled on the next open). */
export function dropCompose() {
  ui.compose = null;
  aside = null;
  renderComposeBar();
}

/**
 * Sends the composer's text as the reply or the edit under way; false if
 * there is none (a new message, then).
 * @param {string} text
 */
export function submitCompose(text) {
  const c = ui.compose;
  if (!c || c.chat !== ui.chat) return false;
  if (c.mode === "reply") {
    post({ kind: "reply", chat: c.chat, replyTo: c.id, text });
    ui.compose = null;
    renderComposeBar();
    return true;
  }
  const m = messageById(c.id);
  if (m && text.trim() && text !== messageText(m)) post({ kind: "edit", chat: c.chat, id: c.id, text });
  cancelCompose();
  return true;
}

/** The bar above the composer: what is being answered or edited. */
export function renderComposeBar() {
  const bar = $("compose-bar");
  const c = ui.compose && ui.compose.chat === ui.chat ? ui.compose : null;
  const m = c ? messageById(c.id) : null;
  // The message went (deleted, disappeared) while being answered or edited.
  if (c && !m && data.history?.chat === c.chat) return cancelCompose();
  bar.hidden = !c || !m;
  if (!c || !m) return;
  bar.dataset.mode = c.mode;
  $("compose-icon").replaceChildren(icon(c.mode === "edit" ? "pencil" : "reply"));
  $("compose-title").textContent = c.mode === "edit" ? t("editingMessage") : t("replyingTo", authorName(m.senderHandle, openGroup()));
  $("compose-quote").textContent = quoteText(m);
  label($("compose-cancel"), t(c.mode === "edit" ? "cancelEdit" : "cancelReply"));
}

/**
 * A message in one line, for the bar: its text, or what kind of file it is.
 * @param {ChatMessage} m
 */
export function quoteText(m) {
  const text = messageText(m);
  if (text) return text;
  if (m.body.kind === "file") return m.body.file.fileName || t("document");
  return "…";
}

/** Grows the composer with its text (up to a limit) and enables Send when there is text. */
export function autosize() {
  const c = $textarea("composer");
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  c.style.height = "auto";
  c.style.height = `${Math.min(c.scrollHeight, 120)}px`;
  if (atBottom) box.scrollTop = box.scrollHeight;
  $button("send").disabled = !c.value.trim() && !hasDraft();
}

export function wireCompose() {
  $("compose-cancel").addEventListener("click", () => {
    cancelCompose();
    $textarea("composer").focus();
  });
  // The popup closes (or the web app is hidden): what was typed goes to the core first.
  window.addEventListener("pagehide", flushDrafts);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") flushDrafts();
  });
}
