// @ts-check
// One chat: its messages as the worker sends them (`{kind: "chat"}`), and the
// composer. Opening a chat tells the worker, which marks it read and keeps
// sending its history while it is open. What a bubble shows of replies,
// reactions, edits and deletes is in msgparts.js, its menu in msgmenu.js,
// the composer's reply and edit modes and the drafts in compose.js, the
// search in a chat in search.js.

import { $, $button, $textarea, avatar, h, t, toast } from "../dom.js";
import { dayLabel, fullTime, startOfDay, timeOfDay } from "../format.js";
import { icon } from "../icons.js";
import { post } from "../port.js";
import { freshShare } from "../../common/messages.js";
import { data, findChat, findContact, isGroup, isNoteToSelf, nameOf, openGroup, redraw, ui } from "../state.js";
import { autosize, cancelCompose, composerTextFor, draftSent, draftTyped, dropCompose, flushDrafts, renderComposeBar, submitCompose, wireCompose } from "./compose.js";
import { clearDraft, fileView, hasDraft, renderDraft, sendDraft, thumbSrc, wireFiles } from "./files.js";
import { eventLine, ownGroupMeta, senderLabel } from "./groupchat.js";
import { closeMsgMenu, menuButton, reattachMsgMenu, wireBubble, wireMsgMenu } from "./msgmenu.js";
import { deletedView, editedButton, flashedFor, historyPanel, quoteView, reactionsView, unreadLine } from "./msgparts.js";
import { placeScroll, scrollState } from "./scroll.js";
import { closeChatSearch, renderChatSearch, wireChatSearch } from "./search.js";
import { ticks } from "./ticks.js";

/** @typedef {import("../state.js").ChatMessage} ChatMessage */
/** @typedef {ChatMessage["body"]} MessageBody */
/** @typedef {Extract<MessageBody, { kind: "link" }>} LinkBody */
/** @typedef {import("../state.js").GroupInfo} GroupInfo */

/** Messages from one sender closer together than this share a bubble group. */
const GROUP_MS = 5 * 60000;

/**
 * Opens a chat, at its first unread message (a line says how many), or at
 * `focus` (a search result), highlighted. A pending "Choose chat…" share
 * is offered there ("Send here" / "Cancel"), never sent just because a
 * chat was opened.
 * @param {string} handle
 * @param {string | null} [focus] a message to show
 */
export function openChat(handle, focus = null) {
  if (ui.chat && ui.chat !== handle) post({ kind: "closeChat" });
  flushDrafts();
  if (ui.chat !== handle) {
    leaveChatModes();
    // Where the unread messages start, before opening reads them.
    const c = findChat(handle);
    ui.unreadMark = c && c.unread > 0 ? { chat: handle, afterMs: c.readUpToMs, count: c.unread } : null;
    ui.shown = { chat: null, lastId: null, count: 0, placed: false };
  }
  ui.focus = focus ? { chat: handle, id: focus } : null;
  ui.chat = handle;
  ui.contactOpen = false;
  ui.lastChat = handle;
  ui.newChat = false;
  ui.picker = null;
  ui.settings = false;
  ui.receiptsFor = null;
  if (data.history?.chat !== handle) data.history = null;
  $textarea("composer").value = composerTextFor(handle);
  post({ kind: "openChat", chat: handle, ...(focus ? { around: focus } : {}) });
  redraw();
  autosize();
}

export function closeChat() {
  if (!ui.chat) return;
  flushDrafts();
  clearDraft();
  leaveChatModes();
  post({ kind: "closeChat" });
  ui.chat = null;
  ui.contactOpen = false;
  ui.receiptsFor = null;
  data.history = null;
  ui.shown = { chat: null, lastId: null, count: 0, placed: false };
  redraw();
}

/** What belongs to the chat on show only: its menu, reply or edit, search, unread line. */
function leaveChatModes() {
  closeMsgMenu(false);
  dropCompose();
  closeChatSearch();
  ui.historyFor = null;
  ui.unreadMark = null;
  ui.focus = null;
}

export function renderChat() {
  const handle = ui.chat;
  if (!handle) return;
  const warning = findContact(handle)?.warning;
  $("chat-warning").hidden = !warning;
  const share = ui.pendingShare && freshShare(ui.pendingShare, Date.now());
  if (!share) ui.pendingShare = null;
  $("share-bar").hidden = !share;
  if (share) $("share-bar-text").textContent = t("shareHere", share.title || share.url, nameOf(handle));
  if (warning) $("chat-warning-text").textContent = warning;

  const box = $("messages");
  const messages = data.history?.chat === handle ? data.history.messages : null;
  const group = openGroup();
  // Left or removed: the chat stays, to read.
  const readOnly = !!group && !group.amMember;
  $("composer-form").hidden = readOnly;
  $("chat-readonly").hidden = !readOnly;
  if (readOnly) $("file-draft").hidden = true;
  const before = scrollState(box);

  /** @type {HTMLElement[]} */
  const items = [h("div", { class: "e2e-note" }, h("span", {}, icon("lock"), t("e2eNote")))];
  if (messages && data.history && data.history.total > messages.length) {
    items.push(h("button", { type: "button", id: "earlier", class: "earlier", onclick: () => loadEarlier(handle) }, t("earlierMessages")));
  }
  if (!messages) {
    items.push(h("div", { class: "center-screen inline" }, h("div", { class: "spinner", "aria-hidden": "true" }), h("p", { class: "muted small" }, t("loadingMessages"))));
  } else if (!messages.length) {
    const name = nameOf(handle);
    const note = isNoteToSelf(handle);
    items.push(h("div", { class: "chat-empty" }, avatar(name, handle, "lg", note ? "note" : isGroup(handle)), h("p", { class: "strong" }, name),
      h("p", { class: "muted small" }, note ? t("noteToSelfEmpty") : t("chatEmpty", name))));
  } else {
    let day = 0;
    /** @type {ChatMessage | null} */
    let prev = null;
    const mark = ui.unreadMark?.chat === handle ? ui.unreadMark : null;
    let marked = false;
    for (const m of messages) {
      const d = startOfDay(m.timeMs);
      if (d !== day) {
        items.push(h("div", { class: "day", role: "separator" }, h("span", {}, dayLabel(m.timeMs))));
        day = d;
        prev = null;
      }
      if (mark && !marked && !m.fromMe && m.timeMs > mark.afterMs) {
        items.push(unreadLine(mark.count));
        marked = true;
        prev = null;
      }
      if (m.body.kind === "group_event") {
        items.push(eventLine(m.body.text, m));
        prev = null;
        continue;
      }
      const grouped = !!prev && prev.fromMe === m.fromMe && prev.senderHandle === m.senderHandle && m.timeMs - prev.timeMs < GROUP_MS;
      items.push(messageView(m, handle, grouped, group));
      prev = m;
    }
  }
  box.replaceChildren(...items);
  box.setAttribute("aria-busy", messages ? "false" : "true");

  placeScroll(box, handle, messages, before);
  $button("send").disabled = !$textarea("composer").value.trim() && !hasDraft();
  renderDraft();
  renderComposeBar();
  renderChatSearch();
  reattachMsgMenu();
}

/**
 * Asks for the page of messages before the ones on show; the message now
 * on top stays where it is (see placeScroll).
 * @param {string} chat
 */
function loadEarlier(chat) {
  const box = $("messages");
  const first = box.querySelector(".msg[data-id]");
  if (first instanceof HTMLElement) ui.older = { chat, id: first.dataset.id ?? "", offset: first.offsetTop - box.scrollTop };
  post({ kind: "moreMessages", chat });
}

/**
 * One message bubble. In a group, another member's first bubble of a run
 * carries their name in their colour; an own message's ticks open who
 * has it ("read by").
 * @param {ChatMessage} m
 * @param {string} chat
 * @param {boolean} grouped
 * @param {GroupInfo | null} group the chat's group, if it is one
 */
function messageView(m, chat, grouped, group) {
  const body = m.body;
  const bubble = h("div", { class: "bubble" });
  if (!m.fromMe && m.senderHandle && m.senderHandle !== chat && !grouped) bubble.append(senderLabel(m.senderHandle, group));
  const quote = quoteView(m, group);
  if (quote) bubble.append(quote);
  if (body.kind === "deleted") bubble.append(deletedView());
  else if (body.kind === "link") bubble.append(...linkCard(body));
  else if (body.kind === "file") bubble.append(...fileView(m, body));
  else if (body.kind === "undecryptable") {
    bubble.append(h("p", { class: "undecryptable-text" }, icon("alert"), h("span", {},
      h("strong", {}, t("undecryptableTitle")), " ", h("span", { class: "reason" }, body.reason || t("undecryptableBody")))));
  } else if (body.kind === "text") bubble.append(h("p", { class: "msg-text" }, ...linkify(body.body)));

  const when = new Date(m.timeMs);
  const clock = h("time", { datetime: when.toISOString(), title: fullTime(m.timeMs) }, timeOfDay(m.timeMs));
  // A disappearing message: a small timer before its time.
  const time = m.expiresMs ? h("span", { class: "msg-time", title: t("disappearsAt", fullTime(m.expiresMs)) }, icon("timer"), clock) : clock;
  const meta = group && m.fromMe ? ownGroupMeta(m, time) : [h("span", { class: "msg-meta" }, time, m.fromMe ? ticks(m.status) : null)];
  // "edited" floats just left of the time.
  bubble.append(meta[0], editedButton(m) ?? "", ...meta.slice(1));
  const history = historyPanel(m);
  if (history) bubble.append(history);
  if (body.kind !== "group_event") {
    bubble.append(menuButton(m));
    wireBubble(bubble, m.id);
  }
  const reactions = reactionsView(m, group);
  // Lit up by a jump to it: the light goes on where it was.
  const lit = flashedFor(m.id);
  return h("div", {
    class: ["msg", m.fromMe ? "me" : "them", grouped && "grouped", `kind-${body.kind}`, m.replyTo && "is-reply", reactions && "has-reactions", lit >= 0 && "flash"].filter(Boolean).join(" "),
    style: lit > 0 ? `--flash-delay: -${lit}ms` : null,
    "data-id": m.id,
    "data-status": m.fromMe ? m.status : null,
  }, bubble, reactions);
}

/**
 * The address if it is a web page (http or https), else null.
 * @param {string} url
 */
function safeUrl(url) {
  try {
    const u = new URL(url);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch {
    return null;
  }
}

/**
 * A shared page: title, address and the quoted selection; with the
 * sender's preview, its picture (from the message, never fetched), the
 * description and the site's name beside the address's real host.
 * @param {LinkBody} body
 */
function linkCard(body) {
  const href = safeUrl(body.url);
  const host = href ? new URL(href).host : body.url;
  const p = body.preview;
  const src = thumbSrc(p?.image || "");
  const site = !p ? body.url : p.siteName && p.siteName !== host ? `${p.siteName} · ${host}` : host;
  const card = h(href ? "a" : "div", { class: src ? "link-card with-image" : "link-card", href, title: body.url, target: href ? "_blank" : null, rel: href ? "noopener noreferrer" : null },
    src ? h("img", { class: "link-image", src, alt: "", draggable: "false" }) : h("span", { class: "link-icon" }, icon("link")),
    h("span", { class: "link-text" },
      h("span", { class: "link-title" }, body.title || host),
      p?.description ? h("span", { class: "link-desc" }, p.description) : null,
      h("span", { class: "link-url" }, site)));
  /** @type {HTMLElement[]} */
  const out = [card];
  if (body.selection) out.push(h("blockquote", { class: "link-quote" }, body.selection));
  return out;
}

/**
 * Text with http(s) links made clickable.
 * @param {string} text
 * @returns {(Node | string)[]}
 */
function linkify(text) {
  /** @type {(Node | string)[]} */
  const out = [];
  let at = 0;
  for (const m of text.matchAll(/\bhttps?:\/\/[^\s<>"]+[^\s<>".,;:!?)\]]/g)) {
    const index = m.index ?? 0;
    if (index > at) out.push(text.slice(at, index));
    const href = safeUrl(m[0]);
    out.push(href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, m[0]) : m[0]);
    at = index + m[0].length;
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}

/** @param {Event} [event] */
function sendComposer(event) {
  event?.preventDefault();
  const c = $textarea("composer");
  const text = c.value.replace(/^\s*\n|\s+$/g, "");
  if (hasDraft() && ui.chat) {
    // The text is the file's caption.
    sendDraft(text.trim());
    c.value = "";
    draftSent(ui.chat);
    autosize();
    c.focus();
    return;
  }
  if (!ui.chat) return;
  if (ui.compose?.mode === "edit") {
    // An edit gives the composer back what was typed before it.
    submitCompose(text);
    c.focus();
    return;
  }
  if (!text.trim()) return;
  if (!submitCompose(text)) post({ kind: "send", chat: ui.chat, text });
  c.value = "";
  draftSent(ui.chat);
  autosize();
  c.focus();
}

/**
 * Sends the page in the active tab to a chat.
 * @param {string} handle
 */
export function shareTab(handle) {
  post({ kind: "shareTab", chat: handle });
  toast(t("sharingWith", nameOf(handle)));
}

export function wireChat() {
  wireFiles();
  wireCompose();
  wireMsgMenu();
  wireChatSearch();
  const composer = $textarea("composer");
  $("composer-form").addEventListener("submit", sendComposer);
  composer.addEventListener("keydown", (e) => {
    // Enter sends; Shift+Enter is a new line; an IME composition keeps its Enter.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && !e.altKey) {
      e.preventDefault();
      sendComposer();
    }
  });
  composer.addEventListener("input", () => {
    // An edit's text is not the chat's draft.
    if (ui.chat && ui.compose?.mode !== "edit") draftTyped(ui.chat, composer.value);
    autosize();
  });
  composer.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && ui.compose) {
      e.preventDefault();
      e.stopPropagation();
      cancelCompose();
    }
  });
  $("share-tab").addEventListener("click", () => ui.chat && shareTab(ui.chat));
  $("share-send").addEventListener("click", () => {
    const chat = ui.chat;
    if (!chat || !ui.pendingShare || !freshShare(ui.pendingShare, Date.now())) {
      ui.pendingShare = null;
      return redraw();
    }
    post({ kind: "sharePending", chat }); // the worker sends it (if still fresh) and forgets it
    ui.pendingShare = null;
    toast(t("sharedTo", nameOf(chat)));
    redraw();
  });
  $("share-cancel").addEventListener("click", () => {
    post({ kind: "discardShare" });
    ui.pendingShare = null;
    redraw();
  });
}
