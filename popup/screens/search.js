// @ts-check
// Searching messages: the chat list's search box looks in every chat, the
// chat's own box (the header's search button) in that chat. The core
// finds them (`search`, newest first); each result shows its chat's name
// (in a chat: who wrote it), when, and a snippet with the words found
// marked. A click opens the chat at the message, highlighted.

import { $, $input, avatar, h, label, t } from "../dom.js";
import { listTime } from "../format.js";
import { post } from "../port.js";
import { data, findChat, isNoteToSelf, openGroup, redraw, ui } from "../state.js";
import { openChat, renderChat } from "./chat.js";
import { authorName } from "./msgparts.js";

/** @typedef {import("../state.js").SearchHit} SearchHit */
/** @typedef {import("../state.js").ChatMessage} ChatMessage */

/** How long typing pauses before the core is asked. */
const SEARCH_PAUSE_MS = 150;
/** About how many characters of a message a result shows. */
const SNIPPET_CHARS = 90;

let timer = 0;

/**
 * Asks the core for the messages matching what is typed (after a pause).
 * @param {string} query
 * @param {string | null} chat a chat to search in, or null for all
 */
export function searchMessages(query, chat) {
  window.clearTimeout(timer);
  const q = query.trim();
  if (!q) return;
  timer = window.setTimeout(() => post({ kind: "search", query: q, chat }), SEARCH_PAUSE_MS);
}

/**
 * What the core found for this query and chat, if it has answered for them.
 * @param {string} query
 * @param {string | null} chat
 */
function hitsFor(query, chat) {
  const s = data.search;
  return s && s.query === query.trim() && s.chat === chat ? s.hits : null;
}

/**
 * The core's answer to a search: shown where it was asked.
 * @param {{ query: string, chat: string | null, hits: SearchHit[] }} found
 */
export function onSearchResults(found) {
  data.search = found;
  if (found.chat === null ? ui.screen === "list" : ui.screen === "chat" && ui.chat === found.chat) redraw();
}

// ------------------------------------------------------------ chat list

/**
 * The "Messages" section under the chats while the list is searched;
 * returns how many results it shows.
 */
export function renderListResults() {
  const q = ui.query.trim();
  const hits = q ? hitsFor(q, null) ?? [] : [];
  const words = wordsOf(q);
  $("message-results").hidden = hits.length === 0;
  $("message-results-list").replaceChildren(...hits.map((hit) => resultRow(hit, words, true)));
  return hits.length;
}

// ------------------------------------------------------------ in a chat

/** Opens the chat's search box (or closes it if open). */
function toggleChatSearch() {
  if (ui.chatSearch !== null) return closeChatSearch(true);
  ui.chatSearch = "";
  $input("chat-search-input").value = "";
  renderChatSearch();
  $input("chat-search-input").focus();
}

/**
 * Closes the chat's search box.
 * @param {boolean} [focusComposer]
 */
export function closeChatSearch(focusComposer = false) {
  if (ui.chatSearch === null) return;
  ui.chatSearch = null;
  renderChatSearch();
  if (focusComposer) $("composer").focus();
}

/** The chat's search box and, once something is typed, what it found. */
export function renderChatSearch() {
  const open = ui.chatSearch !== null && ui.screen === "chat";
  $("chat-search-bar").hidden = !open;
  $("chat-search").setAttribute("aria-expanded", String(open));
  const q = (ui.chatSearch ?? "").trim();
  const hits = open && q ? hitsFor(q, ui.chat) : null;
  $("chat-search-results").hidden = !open || !q;
  const words = wordsOf(q);
  $("chat-search-list").replaceChildren(...(hits ?? []).map((hit) => resultRow(hit, words, false)));
  const empty = $("chat-search-empty");
  empty.hidden = !hits || hits.length > 0;
  empty.textContent = t("noMessagesFound", q);
}

export function wireChatSearch() {
  const input = $input("chat-search-input");
  $("chat-search").addEventListener("click", toggleChatSearch);
  $("chat-search-close").addEventListener("click", () => closeChatSearch(true));
  $("chat-search-bar").addEventListener("submit", (e) => {
    e.preventDefault();
    /** @type {HTMLElement | null} */ ($("chat-search-list").querySelector(".chat-open"))?.click();
  });
  input.addEventListener("input", () => {
    ui.chatSearch = input.value;
    searchMessages(input.value, ui.chat);
    renderChatSearch();
  });
}

// ------------------------------------------------------------ results

/**
 * One result: in the list, the chat's avatar and name; in a chat, who
 * wrote it. Then when, and the snippet.
 * @param {SearchHit} hit
 * @param {string[]} words
 * @param {boolean} inList
 */
function resultRow(hit, words, inList) {
  const m = hit.message;
  const title = inList ? hit.chatName : authorName(m.senderHandle, openGroup());
  const kind = isNoteToSelf(m.chat) ? "note" : findChat(m.chat)?.group ? "group" : "person";
  const text = snippet(searchedText(m), words);
  const open = h("button", { class: "chat-open result-open", type: "button", onclick: () => openResult(hit, inList) },
    inList ? avatar(hit.chatName, m.chat, "", kind) : null,
    h("span", { class: "chat-main" },
      h("span", { class: "chat-top" },
        h("span", { class: "chat-name" }, title),
        h("time", { class: "chat-time", datetime: new Date(m.timeMs).toISOString() }, listTime(m.timeMs))),
      h("span", { class: "chat-bottom" }, h("span", { class: "chat-preview result-snippet" }, ...text))));
  label(open, t("searchResultLabel", title, searchedText(m), listTime(m.timeMs)));
  return h("li", { class: `chat-row result-row${inList ? "" : " in-chat"}`, "data-result": m.id, "data-result-chat": m.chat }, open);
}

/**
 * Opens a result: its chat at the message, highlighted.
 * @param {SearchHit} hit
 * @param {boolean} fromList
 */
function openResult(hit, fromList) {
  const { chat, id } = hit.message;
  if (fromList || ui.chat !== chat) return openChat(chat, id);
  ui.chatSearch = null;
  ui.focus = { chat, id };
  renderChat();
}

/**
 * What search looked at in a message, as one line.
 * @param {ChatMessage} m
 */
function searchedText(m) {
  const b = m.body;
  if (b.kind === "text") return b.body;
  if (b.kind === "link") return [b.title, b.selection, b.url].filter(Boolean).join(" — ");
  if (b.kind === "file") return [b.caption, b.file.fileName].filter(Boolean).join(" · ");
  return "";
}

/**
 * The words typed, longest first (so a longer one is marked whole).
 * @param {string} query
 */
function wordsOf(query) {
  return query.split(/\s+/).filter(Boolean).sort((a, b) => b.length - a.length);
}

/**
 * A part of `text` around the first word found, with every word found
 * marked (`<mark>`), "…" where it was cut.
 * @param {string} text
 * @param {string[]} words
 * @returns {(Node | string)[]}
 */
export function snippet(text, words) {
  const flat = text.replace(/\s+/g, " ").trim();
  const re = words.length ? new RegExp(words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "giu") : null;
  const first = re ? flat.search(re) : -1;
  let start = 0;
  if (first > 30) {
    start = first - 24;
    const space = flat.lastIndexOf(" ", start);
    if (space > first - 40) start = space + 1;
  }
  const end = Math.min(flat.length, start + SNIPPET_CHARS);
  const piece = flat.slice(start, end);
  /** @type {(Node | string)[]} */
  const out = start > 0 ? ["…"] : [];
  let at = 0;
  if (re) {
    for (const m of piece.matchAll(re)) {
      const i = m.index ?? 0;
      if (i > at) out.push(piece.slice(at, i));
      out.push(h("mark", {}, m[0]));
      at = i + m[0].length;
    }
  }
  if (at < piece.length) out.push(piece.slice(at));
  if (end < flat.length) out.push("…");
  return out;
}
