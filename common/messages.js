// @ts-check
// The popup <-> worker protocol, defined once: both sides import this
// module, and `tsc --noEmit` checks every message they build or read
// against the types below. The worker answers over the same Port.
//
// Values that come from the Rust core (Snapshot, ChatMessage, ...) are the
// TypeScript declarations wasm-bindgen and tsify generate from the Rust
// types (wasm/tether_core.d.ts in the built extension).

/** The name of the Port the popup opens (`chrome.runtime.connect({ name })`). */
export const PORT_NAME = "popup";

/**
 * How long a "Choose chat…" share waits for the user to pick a chat. Older
 * ones are dropped unsent: a share is only ever sent by an explicit "Send
 * here", never to whatever chat is opened next.
 */
export const PENDING_SHARE_TTL_MS = 2 * 60_000;

/**
 * A pending share as stored by the worker: the shared page and when it was
 * chosen (`image`: an image's URL, sent as the image itself).
 * @typedef {{ url: string, title: string, selection: string, at: number, image?: boolean }} PendingShare
 */

/**
 * The share if it is still fresh at `now`, else null (also for one without a time).
 * @param {unknown} share
 * @param {number} now
 * @returns {PendingShare | null}
 */
export function freshShare(share, now) {
  const s = /** @type {Partial<PendingShare> | null | undefined} */ (share);
  if (!s || typeof s.at !== "number" || typeof s.url !== "string") return null;
  return now - s.at >= 0 && now - s.at < PENDING_SHARE_TTL_MS ? /** @type {PendingShare} */ (s) : null;
}

/** Chat flags a popup can turn on or off, one at a time ("unread": marked as unread). */
export const FLAGS = /** @type {const} */ (["muted", "archived", "pinned", "unread"]);

/** Most results a search asks the core for. */
export const SEARCH_RESULTS = 50;

/** @typedef {typeof FLAGS[number]} ChatFlag */

/**
 * What the popup asks of the worker.
 * @typedef {(
 *   | { kind: "snapshot" }
 *   | { kind: "setServer", url: string }
 *   | { kind: "startLink", withCode: boolean }
 *   | { kind: "openChat", chat: string, around?: string }
 *   | { kind: "moreMessages", chat: string }
 *   | { kind: "closeChat" }
 *   | { kind: "sharePending", chat: string }
 *   | { kind: "discardShare" }
 *   | { kind: "send", chat: string, text: string }
 *   | { kind: "sendFile", chat: string, key: string, info: FileInfo, caption: string }
 *   | { kind: "cancelUpload", id: string }
 *   | { kind: "retryUpload", id: string }
 *   | { kind: "discardUpload", id: string }
 *   | { kind: "downloadFile", id: string }
 *   | { kind: "shareTab", chat: string }
 *   | { kind: "setFlag", chat: string, flag: ChatFlag, on: boolean }
 *   | { kind: "checkHandle", text: string }
 *   | { kind: "newChat", handle: string, name: string }
 *   | { kind: "answerRequest", handle: string, action: RequestAction }
 *   | { kind: "setNotifications", on: boolean }
 *   | { kind: "setDeviceName", name: string }
 *   | { kind: "confirmAccount", yes: boolean }
 *   | { kind: "logout" }
 *   | { kind: "contactInfo", chat: string }
 *   | { kind: "markVerified", chat: string }
 *   | { kind: "acceptKey", chat: string }
 *   | { kind: "createGroup", name: string, members: string[] }
 *   | { kind: "changeGroup", chat: string, op: GroupOp }
 *   | { kind: "messageReceipts", chat: string, id: string }
 *   | { kind: "reply", chat: string, replyTo: string, text: string }
 *   | { kind: "react", chat: string, id: string, emoji: string }
 *   | { kind: "edit", chat: string, id: string, text: string }
 *   | { kind: "deleteForEveryone", chat: string, id: string }
 *   | { kind: "deleteForMe", chat: string, ids: string[] }
 *   | { kind: "setDisappearing", chat: string, seconds: number }
 *   | { kind: "setDraft", chat: string, text: string }
 *   | { kind: "markRead", chat: string }
 *   | { kind: "search", query: string, chat: string | null }
 * )} PopupRequest
 */

/** @typedef {import("../wasm/tether_core.js").Snapshot} Snapshot */
/** What the popup knows of a file it sends (the worker fills in the size). @typedef {import("../wasm/tether_core.js").FileInfo} FileInfo */

/**
 * A file moving (the worker's broadcast): bytes of the blob done of
 * `total`; `failed` with the reason in words.
 * @typedef {{ id: string, direction: "up" | "down", done: number, total: number, state: "waiting" | "sending" | "done" | "failed", reason: string | null }} Progress
 */
/** @typedef {import("../wasm/tether_core.js").ChatMessage} ChatMessage */
/** @typedef {import("../wasm/tether_core.js").MessagePage} MessagePage */
/** @typedef {import("../wasm/tether_core.js").ContactInfo} ContactInfo */
/** A group's name, members and admins, and what this account may do there. @typedef {import("../wasm/tether_core.js").GroupInfo} GroupInfo */
/** A change of a group (add, remove, leave, rename, admins). @typedef {import("../wasm/tether_core.js").GroupOp} GroupOp */
/** How far an own group message got with one member. @typedef {import("../wasm/tether_core.js").MemberReceipt} MemberReceipt */
/** Accept, delete, block or report a message request, or unblock. @typedef {import("../wasm/tether_core.js").RequestAction} RequestAction */
/** Which of a chat's messages may be reacted to, edited or deleted for everyone now. @typedef {import("../wasm/tether_core.js").MessageActions} MessageActions */
/** A message a search found, with its chat's name. @typedef {import("../wasm/tether_core.js").SearchHit} SearchHit */

/**
 * What the worker tells the popup.
 * @typedef {(
 *   | { kind: "snapshot", snapshot: Snapshot }
 *   | { kind: "chat", chat: string, messages: ChatMessage[], total: number, group: GroupInfo | null, actions: MessageActions }
 *   | { kind: "serverChecked", ok: boolean, fingerprint: string | null, error: string | null }
 *   | { kind: "handleChecked", text: string, handle: string | null, error: string | null }
 *   | { kind: "error", message: string }
 *   | { kind: "contactInfo", chat: string, info: ContactInfo | null }
 *   | { kind: "progress", progress: Progress }
 *   | { kind: "groupCreated", chat: string }
 *   | { kind: "receipts", chat: string, id: string, receipts: MemberReceipt[] }
 *   | { kind: "searchResults", query: string, chat: string | null, hits: SearchHit[] }
 * )} WorkerMessage
 */

/** Every request kind, for the worker's router (and its exhaustiveness check). */
export const REQUEST_KINDS = /** @type {const} */ ([
  "snapshot",
  "setServer",
  "startLink",
  "openChat",
  "moreMessages",
  "closeChat",
  "sharePending",
  "discardShare",
  "send",
  "sendFile",
  "cancelUpload",
  "retryUpload",
  "discardUpload",
  "downloadFile",
  "shareTab",
  "setFlag",
  "checkHandle",
  "newChat",
  "answerRequest",
  "setNotifications",
  "setDeviceName",
  "confirmAccount",
  "logout",
  "contactInfo",
  "markVerified",
  "acceptKey",
  "createGroup",
  "changeGroup",
  "messageReceipts",
  "reply",
  "react",
  "edit",
  "deleteForEveryone",
  "deleteForMe",
  "setDisappearing",
  "setDraft",
  "markRead",
  "search",
]);

/** How many of a chat's latest messages a view gets at first; "earlier messages" adds as many. */
export const CHAT_PAGE = 50;

/**
 * A chat's last `limit` messages (and how many it has), what the message
 * menu may offer for them now, and, for a group's chat, the group as it
 * stands: what the worker (and the web app's page) sends whenever an open
 * chat changes (a group's changes always write a line into its chat).
 * @param {{ messagePage(chat: string, limit: number, around: string | null | undefined): MessagePage, groupInfo(chat: string): GroupInfo | null, messageActions(chat: string): MessageActions }} core
 * @param {string} chat
 * @param {number} limit
 * @param {string | null} [around] a message to include (a search result), with a few before it
 * @returns {Extract<WorkerMessage, { kind: "chat" }>}
 */
export function chatReply(core, chat, limit = CHAT_PAGE, around = null) {
  const page = core.messagePage(chat, limit, around);
  return { kind: "chat", chat, messages: page.messages, total: page.total, group: core.groupInfo(chat), actions: core.messageActions(chat) };
}

/**
 * Whether messages arrived unread in a chat a view has open on screen:
 * they are read as they arrive (unless the person marked the chat unread).
 * @param {Snapshot} snapshot
 * @param {string} chat
 */
export function seenOnArrival(snapshot, chat) {
  return snapshot.chats.some((c) => c.handle === chat && c.unread > 0 && !c.markedUnread);
}

/**
 * The commands on a chat's messages, which the worker and the web app's
 * page run the same way.
 * @param {{
 *   reply(chat: string, replyTo: string, text: string): Promise<unknown>,
 *   react(chat: string, id: string, emoji: string): Promise<void>,
 *   edit(chat: string, id: string, text: string): Promise<void>,
 *   deleteForEveryone(chat: string, id: string): Promise<void>,
 *   deleteForMe(chat: string, ids: string[]): Promise<void>,
 *   setDisappearing(chat: string, seconds: number): Promise<void>,
 *   setDraft(chat: string, text: string): Promise<void>,
 *   markRead(chat: string): Promise<void>,
 * }} core
 * @param {Extract<PopupRequest, { kind: "reply" | "react" | "edit" | "deleteForEveryone" | "deleteForMe" | "setDisappearing" | "setDraft" | "markRead" }>} msg
 * @returns {Promise<void>}
 */
export async function messageCommand(core, msg) {
  switch (msg.kind) {
    case "reply":
      await core.reply(msg.chat, msg.replyTo, msg.text);
      return;
    case "react":
      return core.react(msg.chat, msg.id, msg.emoji);
    case "edit":
      return core.edit(msg.chat, msg.id, msg.text);
    case "deleteForEveryone":
      return core.deleteForEveryone(msg.chat, msg.id);
    case "deleteForMe":
      return core.deleteForMe(msg.chat, msg.ids);
    case "setDisappearing":
      return core.setDisappearing(msg.chat, msg.seconds);
    case "setDraft":
      return core.setDraft(msg.chat, msg.text);
    case "markRead":
      return core.markRead(msg.chat);
  }
}

/**
 * The answer to a search: what the core found for `query` in `chat` (or
 * in every chat when null), from the history's word index.
 * @param {{ search(query: string, chat: string | null | undefined, limit: number): Promise<SearchHit[]> }} core
 * @param {string} query
 * @param {string | null} chat
 * @returns {Promise<Extract<WorkerMessage, { kind: "searchResults" }>>}
 */
export async function searchReply(core, query, chat) {
  return { kind: "searchResults", query, chat, hits: await core.search(query, chat, SEARCH_RESULTS) };
}

/**
 * Checks that a value from the Port is a request this version knows (the
 * Port only carries messages from this extension's own pages, but a stale
 * popup after an update may speak an older version).
 * @param {unknown} msg
 * @returns {msg is PopupRequest}
 */
export function isRequest(msg) {
  return typeof msg === "object" && msg !== null && REQUEST_KINDS.includes(/** @type {any} */ (msg).kind);
}
