// @ts-check
// What the popup remembers. `data` is what the worker last sent, as received
// (never changed here); `ui` is view state: which screen, which chat is
// open, what is typed in a box, whether a section is expanded. Domain state
// (order, names, validity, flags) lives in the core and arrives in `data`.

import { t } from "./dom.js";

/** @typedef {import("../common/messages.js").Snapshot} Snapshot */
/** @typedef {import("../common/messages.js").ChatMessage} ChatMessage */
/** @typedef {Snapshot["chats"][number]} ChatSummary */
/** @typedef {Snapshot["contacts"][number]} ContactSummary */
/** @typedef {Extract<import("../common/messages.js").WorkerMessage, { kind: "serverChecked" }>} ServerChecked */
/** @typedef {Extract<import("../common/messages.js").WorkerMessage, { kind: "handleChecked" }>} HandleChecked */
/** @typedef {import("../common/messages.js").ContactInfo} ContactInfo */
/** @typedef {import("../common/messages.js").GroupInfo} GroupInfo */
/** @typedef {import("../common/messages.js").MemberReceipt} MemberReceipt */
/** @typedef {import("../common/messages.js").MessageActions} MessageActions */
/** @typedef {import("../common/messages.js").SearchHit} SearchHit */
/** @typedef {"starting" | "setup" | "unlinked" | "linking" | "confirm" | "list" | "chat" | "newchat" | "newgroup" | "settings" | "contact" | "group" | "requests"} Screen */

export const SCREENS = /** @type {const} */ (["starting", "setup", "unlinked", "linking", "confirm", "list", "chat", "newchat", "newgroup", "settings", "contact", "group", "requests"]);

export const data = {
  /** The worker's latest snapshot. @type {Snapshot | null} */
  snap: null,
  /** The open chat's latest messages as the worker last sent them (how many it has in all, its group, for a group's chat, and what the message menu may offer). @type {{ chat: string, messages: ChatMessage[], total: number, group: GroupInfo | null, actions: MessageActions } | null} */
  history: null,
  /** What the core found for the search on show (the chat list's: chat null). @type {{ query: string, chat: string | null, hits: SearchHit[] } | null} */
  search: null,
  /** Who has an own group message, as the worker last said ("read by"). @type {{ chat: string, id: string, receipts: MemberReceipt[] } | null} */
  receipts: null,
  /** The open contact info screen's data, as the worker last sent it. @type {{ chat: string, info: ContactInfo | null } | null} */
  contact: null,
};

export const ui = {
  /** @type {Screen} */
  screen: "starting",
  /** Handle of the open chat, or null for the chat list. @type {string | null} */
  chat: null,
  /** The chat last open, so going back puts the keyboard on its row. @type {string | null} */
  lastChat: null,
  settings: false,
  newChat: false,
  /** The open chat's info screen is shown (the contact's, or the group's). */
  contactOpen: false,
  /** Picking contacts for a new group (`create`) or to add to the open group (`add`): what is typed and ticked. @type {{ mode: "create" | "add", name: string, query: string, picked: string[] } | null} */
  picker: null,
  /** The own group message whose "read by" list is open. @type {string | null} */
  receiptsFor: null,
  /** The group info screen: the member whose actions are open, renaming, asking before leaving. @type {{ member: string | null, renaming: boolean, leaving: boolean }} */
  group: { member: null, renaming: false, leaving: false },
  /** The message-requests screen is open. */
  requests: false,
  /** The chat list's search box. */
  query: "",
  /** The new-chat screen's box. */
  contactQuery: "",
  /** The core's verdict on the text last typed in either box (matched by `text`). @type {HandleChecked | null} */
  handleCheck: null,
  archivedOpen: false,
  /** Which chat the row menu is open for, and the button it hangs from. @type {{ handle: string, anchor: HTMLElement } | null} */
  menu: null,
  logoutConfirm: false,
  /** First run: a check is under way; the last serverChecked answer. */
  checking: false,
  /** @type {{ ok: boolean, fingerprint: string | null, error: string | null } | null} */
  check: null,
  setupTouched: false,
  /** The banner error the user closed (shown again if a different one comes). @type {string | null} */
  dismissedError: null,
  /** Text typed per chat and not yet kept by the core (`setDraft`, after a pause), so going back and forth loses nothing. @type {Map<string, string>} */
  drafts: new Map(),
  /** The composer answers (`reply`) or edits (`edit`) a message of the open chat. @type {{ mode: "reply" | "edit", chat: string, id: string } | null} */
  compose: null,
  /** The message whose menu is open (reactions, reply, edit, delete), the element it hangs from, and a step inside it. @type {{ id: string, anchor: HTMLElement, step: "main" | "emoji" | "delete" } | null} */
  msgMenu: null,
  /** The own message whose earlier versions are shown. @type {string | null} */
  historyFor: null,
  /** The search inside the open chat: what is typed (null: closed). @type {string | null} */
  chatSearch: null,
  /** A message to scroll to and highlight once its chat's history is on show. @type {{ chat: string, id: string } | null} */
  focus: null,
  /** Earlier messages asked for: the message on top then, and how far below the list's top it stood (it stays there). @type {{ chat: string, id: string, offset: number } | null} */
  older: null,
  /** A message lit up after a jump to it (a quote, a search result), and since when. @type {{ id: string, at: number } | null} */
  flash: null,
  /** Where "N unread messages" goes in the open chat, as it stood when the chat was opened (before it was read). @type {{ chat: string, afterMs: number, count: number } | null} */
  unreadMark: null,
  /** The QR / code currently drawn, and when it was first seen (for the meter). @type {{ key: string | null, seenMs: number, lifeMs: number }} */
  link: { key: null, seenMs: 0, lifeMs: 1 },
  /** What the message list showed last, to know when to scroll to the bottom, and whether the open chat was placed at its first unread message yet. @type {{ chat: string | null, lastId: string | null, count: number, placed: boolean }} */
  shown: { chat: null, lastId: null, count: 0, placed: false },
  /** A page chosen from "Send to… → Choose chat…", waiting for an explicit "Send here" (expires). @type {import("../common/messages.js").PendingShare | null} */
  pendingShare: null,
};

/** @type {() => void} */
let painter = () => {};

/**
 * Sets what `redraw()` runs (main.js: paint the screen the state calls for).
 * @param {() => void} fn
 */
export function onRedraw(fn) {
  painter = fn;
}

/** Paints the popup again from `data` and `ui`. */
export function redraw() {
  painter();
}

/** The chats, in the core's display order. */
export const chats = () => data.snap?.chats ?? [];
/** Open message requests, newest first (not chats: no unread, no badge). */
export const requests = () => data.snap?.requests ?? [];
/** The contacts, sorted by the core. */
export const contacts = () => data.snap?.contacts ?? [];
/** @param {string} handle */
export const findChat = (handle) => chats().find((c) => c.handle === handle) ?? null;
/**
 * Whether a chat is a group's (the core's summary says so; a chat just
 * created may be known only from its history).
 * @param {string | null} handle
 */
export function isGroup(handle) {
  if (!handle) return false;
  return findChat(handle)?.group ?? (data.history?.chat === handle && !!data.history.group);
}
/** The open chat's group, as its history last came. @returns {GroupInfo | null} */
export function openGroup() {
  return data.history && data.history.chat === ui.chat ? data.history.group : null;
}
/** @param {string} handle */
export const findContact = (handle) => contacts().find((c) => c.handle === handle) ?? null;

/** This account's handle (its note to self's chat), once linked. */
export const myHandle = () => data.snap?.account?.handle ?? null;
/**
 * Whether a chat is the note to self (the core's summary says so; one not
 * written to yet is this account's own handle).
 * @param {string | null} handle
 */
export const isNoteToSelf = (handle) => !!handle && (findChat(handle)?.noteToSelf ?? handle === myHandle());

/**
 * The name the core gives a chat or contact; the bare handle only while the
 * core has not listed it yet (a chat just started).
 * @param {string} handle
 */
export function nameOf(handle) {
  return findChat(handle)?.name ?? findContact(handle)?.name ?? (handle === myHandle() ? t("noteToSelf") : handle);
}

/**
 * Whether text typed in a search box matches any of these fields.
 * @param {string} query
 * @param {...(string | null | undefined)} fields
 */
export function matches(query, ...fields) {
  const q = query.trim().toLowerCase().replace(/^@/, "");
  if (!q) return true;
  return fields.some((f) => (f ?? "").toLowerCase().includes(q));
}

/**
 * The core's normalised handle for this text, if it has answered for exactly
 * this text and found it valid.
 * @param {string} text
 * @returns {string | null}
 */
export function checkedHandle(text) {
  const c = ui.handleCheck;
  return c && c.text === text ? c.handle : null;
}

/**
 * The core's reason this text is not a handle, if it has answered for it.
 * @param {string} text
 * @returns {string | null}
 */
export function handleError(text) {
  const c = ui.handleCheck;
  return c && c.text === text ? c.error : null;
}
