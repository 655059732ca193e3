// @ts-check
// The popup's screens talk to "the worker" with the requests of
// common/messages.js. In the web app the core runs in this page, so this
// module answers them directly, as background/router.js does in the
// extension: one switch on the request's kind, each a core command.
// Files go through common/transfer.js, as in the worker (transfer.js).
// Requests that only make sense in a browser extension (the first-run
// server check, sharing the current tab, context-menu shares, renaming a
// companion before it links) are answered with an error.

import { checkHandle } from "../wasm/tether_app.js";
import { CHAT_PAGE, chatReply, isRequest, messageCommand, searchReply, seenOnArrival } from "../common/messages.js";
import { onUpdate, ready } from "./engine.js";
import { fileRequest, onProgress } from "./transfer.js";

/** @typedef {import("../wasm/tether_app.js").Core} Core */
/** @typedef {import("../common/messages.js").PopupRequest} PopupRequest */
/** @typedef {import("../common/messages.js").WorkerMessage} WorkerMessage */

/** The popup view's handler (popup/port.js's `start`), once it started. @type {((msg: WorkerMessage) => void) | null} */
let view = null;
/** The chat the view has open: its messages are sent when they change. @type {string | null} */
let openChat = null;
/** How many of its latest messages the view shows (see CHAT_PAGE). */
let page = CHAT_PAGE;

/**
 * The view's handler: everything "the worker" says goes there.
 * @param {(msg: WorkerMessage) => void} handler
 */
export function attach(handler) {
  view = handler;
}

/** @param {WorkerMessage} msg */
function tell(msg) {
  view?.(msg);
}

onUpdate((update) => {
  ready.then((core) => {
    if (openChat !== null && update.changedChats.includes(openChat)) {
      tell(chatReply(core, openChat, page));
      // The chat is on screen: what arrives there is read.
      if (document.visibilityState === "visible" && seenOnArrival(update.snapshot, openChat)) {
        core.markRead(openChat).catch(() => {});
      }
    }
    tell({ kind: "snapshot", snapshot: update.snapshot });
  });
});

onProgress((progress) => tell({ kind: "progress", progress }));

// Back on screen with a chat open: what arrived meanwhile is read now.
document.addEventListener("visibilitychange", () => {
  const chat = openChat;
  if (document.visibilityState !== "visible" || chat === null) return;
  ready.then((core) => (seenOnArrival(core.snapshot(), chat) ? core.markRead(chat) : undefined)).catch(() => {});
});

/**
 * Answers one request of the view.
 * @param {unknown} msg
 */
export function request(msg) {
  if (!isRequest(msg)) {
    tell({ kind: "error", message: `unknown request: ${String(/** @type {any} */ (msg)?.kind)}` });
    return;
  }
  ready
    .then((core) => route(core, msg))
    .catch((err) => tell({ kind: "error", message: err instanceof Error ? err.message : String(err) }));
}

/**
 * @param {string} what
 * @returns {never}
 */
function notHere(what) {
  throw new Error(`${what} is a browser extension feature`);
}

/**
 * @param {Core} core
 * @param {PopupRequest} msg
 * @returns {Promise<void>}
 */
async function route(core, msg) {
  switch (msg.kind) {
    case "snapshot":
      return tell({ kind: "snapshot", snapshot: core.snapshot() });
    case "openChat":
      openChat = msg.chat;
      page = CHAT_PAGE;
      // The history is read on demand: have the chat loaded first.
      await core.loadChat(msg.chat);
      if (openChat === msg.chat) {
        const reply = chatReply(core, msg.chat, CHAT_PAGE, msg.around);
        page = Math.max(CHAT_PAGE, reply.messages.length);
        tell(reply);
      }
      return core.markRead(msg.chat);
    case "moreMessages":
      if (openChat !== msg.chat) return;
      page += CHAT_PAGE;
      return tell(chatReply(core, msg.chat, page));
    case "closeChat":
      openChat = null;
      return;
    case "send":
      await core.sendText(msg.chat, msg.text);
      return;
    case "setFlag":
      return core.setFlag(msg.chat, msg.flag, msg.on);
    case "checkHandle": {
      const { handle, error } = checkHandle(msg.text);
      return tell({ kind: "handleChecked", text: msg.text, handle, error });
    }
    case "newChat":
      return core.addContact(msg.handle, msg.name || "");
    case "answerRequest":
      return core.answerRequest(msg.handle, msg.action);
    case "setNotifications":
      if (msg.on && typeof Notification !== "undefined" && Notification.permission === "default") await Notification.requestPermission();
      return core.setNotifications(!!msg.on);
    case "contactInfo":
      return tell({ kind: "contactInfo", chat: msg.chat, info: core.contactInfo(msg.chat) });
    case "markVerified":
      await core.markVerified(msg.chat);
      return tell({ kind: "contactInfo", chat: msg.chat, info: core.contactInfo(msg.chat) });
    case "acceptKey":
      await core.acceptKey(msg.chat);
      return tell({ kind: "contactInfo", chat: msg.chat, info: core.contactInfo(msg.chat) });
    case "createGroup": {
      const chat = await core.createGroup(msg.name, msg.members);
      return tell({ kind: "groupCreated", chat });
    }
    case "changeGroup":
      return core.changeGroup(msg.chat, msg.op);
    case "messageReceipts":
      return tell({ kind: "receipts", chat: msg.chat, id: msg.id, receipts: core.messageReceipts(msg.chat, msg.id) });
    case "reply":
    case "react":
    case "edit":
    case "deleteForEveryone":
    case "deleteForMe":
    case "setDisappearing":
    case "setDraft":
    case "markRead":
      return messageCommand(core, msg);
    case "search":
      return tell(await searchReply(core, msg.query, msg.chat));
    case "sendFile":
    case "cancelUpload":
    case "retryUpload":
    case "discardUpload":
    case "downloadFile":
      return fileRequest(core, msg);
    case "discardShare":
      return;
    case "setServer":
      return notHere("choosing a server");
    case "startLink":
    case "confirmAccount":
      return notHere("linking as a companion");
    case "sharePending":
    case "shareTab":
      return notHere("sharing a tab");
    case "setDeviceName":
      return notHere("renaming a companion");
    case "logout":
      return notHere("logging out (the phone is the account's primary)");
    default: {
      /** @type {never} */
      const unknown = msg;
      throw new Error(`unhandled request: ${JSON.stringify(unknown)}`);
    }
  }
}
