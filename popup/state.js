// @ts-check
// What the popup remembers. `data` is what the worker last sent, as received
// (never changed here); `ui` is view state: which screen, which chat is
// open, what is typed in a box, whether a section is expanded. Domain state
// (order, names, validity, flags) lives in the core and arrives in `data`.

/** @typedef {import("../common/messages.js").Snapshot} Snapshot */
/** @typedef {import("../common/messages.js").ChatMessage} ChatMessage */
/** @typedef {Snapshot["chats"][number]} ChatSummary */
/** @typedef {Snapshot["contacts"][number]} ContactSummary */
/** @typedef {Extract<import("../common/messages.js").WorkerMessage, { kind: "serverChecked" }>} ServerChecked */
/** @typedef {Extract<import("../common/messages.js").WorkerMessage, { kind: "handleChecked" }>} HandleChecked */
/** @typedef {import("../common/messages.js").ContactInfo} ContactInfo */
/** @typedef {"starting" | "setup" | "unlinked" | "linking" | "confirm" | "list" | "chat" | "newchat" | "settings" | "contact" | "requests"} Screen */

export const SCREENS = /** @type {const} */ (["starting", "setup", "unlinked", "linking", "confirm", "list", "chat", "newchat", "settings", "contact", "requests"]);

export const data = {
  /** The worker's latest snapshot. @type {Snapshot | null} */
  snap: null,
  /** The open chat's history as the worker last sent it. @type {{ chat: string, messages: ChatMessage[] } | null} */
  history: null,
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
  /** The open chat's contact info screen is shown. */
  contactOpen: false,
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
  /** Unsent text per chat, so going back and forth loses nothing. @type {Map<string, string>} */
  drafts: new Map(),
  /** The QR / code currently drawn, and when it was first seen (for the meter). @type {{ key: string | null, seenMs: number, lifeMs: number }} */
  link: { key: null, seenMs: 0, lifeMs: 1 },
  /** What the message list showed last, to know when to scroll to the bottom. @type {{ chat: string | null, lastId: string | null, count: number }} */
  shown: { chat: null, lastId: null, count: 0 },
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
/** @param {string} handle */
export const findContact = (handle) => contacts().find((c) => c.handle === handle) ?? null;

/**
 * The name the core gives a chat or contact; the bare handle only while the
 * core has not listed it yet (a chat just started).
 * @param {string} handle
 */
export function nameOf(handle) {
  return findChat(handle)?.name ?? findContact(handle)?.name ?? handle;
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
