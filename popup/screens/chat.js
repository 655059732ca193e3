// @ts-check
// One chat: its messages as the worker sends them (`{kind: "chat"}`), and the
// composer. Opening a chat tells the worker, which marks it read and keeps
// sending its history while it is open.

import { $, $button, $textarea, avatar, h, hueOf, label, t, toast } from "../dom.js";
import { dayLabel, fullTime, startOfDay, timeOfDay } from "../format.js";
import { icon } from "../icons.js";
import { post } from "../port.js";
import { freshShare } from "../../common/messages.js";
import { data, findContact, isGroup, nameOf, openGroup, redraw, ui } from "../state.js";
import { clearDraft, fileView, hasDraft, renderDraft, sendDraft, wireFiles } from "./files.js";

/** @typedef {import("../state.js").ChatMessage} ChatMessage */
/** @typedef {ChatMessage["body"]} MessageBody */
/** @typedef {Extract<MessageBody, { kind: "link" }>} LinkBody */
/** @typedef {ChatMessage["status"]} Status */
/** @typedef {import("../state.js").GroupInfo} GroupInfo */

/** Messages from one sender closer together than this share a bubble group. */
const GROUP_MS = 5 * 60000;

/**
 * Opens a chat. A pending "Choose chat…" share is offered there ("Send
 * here" / "Cancel"), never sent just because a chat was opened.
 * @param {string} handle
 */
export function openChat(handle) {
  if (ui.chat && ui.chat !== handle) post({ kind: "closeChat" });
  ui.chat = handle;
  ui.contactOpen = false;
  ui.lastChat = handle;
  ui.newChat = false;
  ui.picker = null;
  ui.settings = false;
  ui.receiptsFor = null;
  if (data.history?.chat !== handle) data.history = null;
  $textarea("composer").value = ui.drafts.get(handle) ?? "";
  post({ kind: "openChat", chat: handle });
  redraw();
  autosize();
}

export function closeChat() {
  if (!ui.chat) return;
  clearDraft();
  post({ kind: "closeChat" });
  ui.chat = null;
  ui.contactOpen = false;
  ui.receiptsFor = null;
  data.history = null;
  ui.shown = { chat: null, lastId: null, count: 0 };
  redraw();
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
  // At the bottom as the user left it: bubbles may have grown since the
  // last render (a photo decoded) before anything scrolled.
  const atBottom = box.dataset.pinned ? box.dataset.pinned === "true" : box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const prevTop = box.scrollTop;

  /** @type {HTMLElement[]} */
  const items = [h("div", { class: "e2e-note" }, h("span", {}, icon("lock"), t("e2eNote")))];
  if (!messages) {
    items.push(h("div", { class: "center-screen inline" }, h("div", { class: "spinner", "aria-hidden": "true" }), h("p", { class: "muted small" }, t("loadingMessages"))));
  } else if (!messages.length) {
    const name = nameOf(handle);
    items.push(h("div", { class: "chat-empty" }, avatar(name, handle, "lg", isGroup(handle)), h("p", { class: "strong" }, name), h("p", { class: "muted small" }, t("chatEmpty", name))));
  } else {
    let day = 0;
    /** @type {ChatMessage | null} */
    let prev = null;
    for (const m of messages) {
      const d = startOfDay(m.timeMs);
      if (d !== day) {
        items.push(h("div", { class: "day", role: "separator" }, h("span", {}, dayLabel(m.timeMs))));
        day = d;
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

  // Scroll to the bottom on open and when a message arrives; otherwise stay put.
  const last = messages?.at(-1)?.id ?? null;
  const count = messages?.length ?? 0;
  const fresh = ui.shown.chat !== handle || ui.shown.lastId !== last || ui.shown.count !== count;
  box.scrollTop = fresh || atBottom ? box.scrollHeight : prevTop;
  keepPinned(box, fresh || atBottom);
  ui.shown = { chat: handle, lastId: last, count };
  $button("send").disabled = !$textarea("composer").value.trim() && !hasDraft();
  renderDraft();
}

/**
 * A change of a group, as a line across the chat ("Alice added Bob").
 * @param {string} text
 * @param {ChatMessage} m
 */
function eventLine(text, m) {
  return h("div", { class: "event-line", role: "note", "data-id": m.id }, h("span", { title: fullTime(m.timeMs) }, text));
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
  if (!m.fromMe && m.senderHandle && m.senderHandle !== chat && !grouped) {
    const name = group?.members.find((p) => p.handle === m.senderHandle)?.name ?? nameOf(m.senderHandle);
    bubble.append(h("span", { class: "sender", style: `--hue:${hueOf(m.senderHandle)}`, "data-handle": m.senderHandle }, name));
  }
  if (body.kind === "link") bubble.append(...linkCard(body));
  else if (body.kind === "file") bubble.append(...fileView(m, body));
  else if (body.kind === "undecryptable") {
    bubble.append(h("p", { class: "undecryptable-text" }, icon("alert"), h("span", {},
      h("strong", {}, t("undecryptableTitle")), " ", h("span", { class: "reason" }, body.reason || t("undecryptableBody")))));
  } else if (body.kind === "text") bubble.append(h("p", { class: "msg-text" }, ...linkify(body.body)));

  const when = new Date(m.timeMs);
  const time = h("time", { datetime: when.toISOString(), title: fullTime(m.timeMs) }, timeOfDay(m.timeMs));
  const inGroup = !!group && m.fromMe && m.status !== "pending" && m.status !== "failed";
  const open = inGroup && ui.receiptsFor === m.id;
  const meta = inGroup
    ? h("button", { class: "msg-meta meta-btn", type: "button", "aria-expanded": String(open), title: t("messageInfo"), onclick: () => toggleReceipts(m.id) }, time)
    : h("span", { class: "msg-meta" }, time);
  if (m.fromMe) meta.append(ticks(m.status));
  bubble.append(meta);
  if (open) bubble.append(readBy(m.id));
  return h("div", {
    class: ["msg", m.fromMe ? "me" : "them", grouped && "grouped", `kind-${body.kind}`].filter(Boolean).join(" "),
    "data-id": m.id,
    "data-status": m.fromMe ? m.status : null,
  }, bubble);
}

/**
 * Opens (asking the worker) or closes an own group message's "read by".
 * @param {string} id
 */
function toggleReceipts(id) {
  ui.receiptsFor = ui.receiptsFor === id ? null : id;
  if (ui.receiptsFor && ui.chat) post({ kind: "messageReceipts", chat: ui.chat, id });
  renderChat();
}

/**
 * Who has an own group message: read, delivered, not yet — each member
 * with the ticks they gave it.
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

/** @type {Record<Status, { icon: "alert" | "clock" | "check" | "checks", key: string }>} */
const TICKS = {
  failed: { icon: "alert", key: "statusFailed" },
  pending: { icon: "clock", key: "statusPending" },
  sent: { icon: "check", key: "statusSent" },
  delivered: { icon: "checks", key: "statusDelivered" },
  read: { icon: "checks", key: "statusRead" },
};

/**
 * ✓ sent, ✓✓ delivered, blue ✓✓ read; a clock while pending; a warning
 * sign when it will not be sent.
 * @param {Status} status
 */
function ticks(status) {
  const tick = TICKS[status] ?? TICKS.pending;
  const el = h("span", { class: `ticks ${status}`, "data-status": status, role: "img" }, icon(tick.icon));
  label(el, t(tick.key));
  return el;
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
 * A shared page: title, address and the quoted selection.
 * @param {LinkBody} body
 */
function linkCard(body) {
  const href = safeUrl(body.url);
  const host = href ? new URL(href).host : body.url;
  const card = h(href ? "a" : "div", { class: "link-card", href, target: href ? "_blank" : null, rel: href ? "noopener noreferrer" : null },
    h("span", { class: "link-icon" }, icon("link")),
    h("span", { class: "link-text" },
      h("span", { class: "link-title" }, body.title || host),
      h("span", { class: "link-url" }, body.url)));
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

/** Grows the composer with its text (up to a limit) and enables Send when there is text. */
function autosize() {
  const c = $textarea("composer");
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  c.style.height = "auto";
  c.style.height = `${Math.min(c.scrollHeight, 120)}px`;
  if (atBottom) box.scrollTop = box.scrollHeight;
  $button("send").disabled = !c.value.trim() && !hasDraft();
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
    ui.drafts.delete(ui.chat);
    autosize();
    c.focus();
    return;
  }
  if (!text.trim() || !ui.chat) return;
  post({ kind: "send", chat: ui.chat, text });
  c.value = "";
  ui.drafts.delete(ui.chat);
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
    if (ui.chat) ui.drafts.set(ui.chat, composer.value);
    autosize();
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
