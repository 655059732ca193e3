// @ts-check
// One router for the popup's Port: checks each request against the shared
// schema (common/messages.js) and switches on its kind. Every state change
// is a core command, run in the core's serial queue.

import { checkHandle, formatFingerprint } from "../wasm/tether_core.js";
import { CHAT_PAGE, PORT_NAME, chatReply, freshShare, isRequest, messageCommand, searchReply } from "../common/messages.js";
import { PENDING_SHARE_KEY, choosingPreview } from "./actions.js";
import { whenReady } from "./core.js";
import { errorMessage } from "./log.js";
import { pages, ports, post } from "./ports.js";
import { fileRequest, replayProgress } from "./transfer.js";
import { sendImage } from "./imageshare.js";
import { pagePreview } from "./preview.js";

/** @typedef {import("../wasm/tether_core.js").Core} Core */
/** @typedef {import("../common/messages.js").PopupRequest} PopupRequest */

/**
 * A popup connected: it gets snapshots pushed until it closes.
 * @param {chrome.runtime.Port} port
 */
export function onConnect(port) {
  if (port.name !== PORT_NAME || port.sender?.id !== chrome.runtime.id) return;
  ports.set(port, null);
  port.onDisconnect.addListener(() => {
    ports.delete(port);
    pages.delete(port);
  });
  port.onMessage.addListener((msg) => {
    if (!isRequest(msg)) {
      post(port, { kind: "error", message: `unknown request: ${String(msg?.kind)}` });
      return;
    }
    ready(port, (core) => route(core, port, msg));
  });
  ready(port, (core) => core.popupOpened());
  replayProgress(port);
}

/**
 * @param {chrome.runtime.Port} port
 * @param {(core: Core) => Promise<void> | void} fn
 */
function ready(port, fn) {
  whenReady(async (core) => {
    try {
      await fn(core);
    } catch (err) {
      post(port, { kind: "error", message: errorMessage(err) });
    }
  });
}

/**
 * @param {Core} core
 * @param {chrome.runtime.Port} port
 * @param {PopupRequest} msg
 * @returns {Promise<void>}
 */
async function route(core, port, msg) {
  switch (msg.kind) {
    case "snapshot":
      return post(port, { kind: "snapshot", snapshot: core.snapshot() });
    case "setServer":
      return setServer(core, port, msg.url);
    case "startLink":
      return core.startLink(!!msg.withCode);
    case "openChat":
      ports.set(port, msg.chat);
      pages.set(port, CHAT_PAGE);
      // The history is read on demand: have the chat loaded first.
      await core.loadChat(msg.chat);
      if (ports.get(port) === msg.chat) {
        const reply = chatReply(core, msg.chat, CHAT_PAGE, msg.around);
        pages.set(port, Math.max(CHAT_PAGE, reply.messages.length));
        post(port, reply);
      }
      return core.markRead(msg.chat);
    case "moreMessages":
      if (ports.get(port) !== msg.chat) return;
      pages.set(port, (pages.get(port) ?? CHAT_PAGE) + CHAT_PAGE);
      return post(port, chatReply(core, msg.chat, pages.get(port)));
    case "closeChat":
      ports.set(port, null);
      return;
    case "sharePending": {
      // Sent once, only if still fresh; an expired one is dropped unsent.
      const { [PENDING_SHARE_KEY]: stored } = await chrome.storage.session.get(PENDING_SHARE_KEY);
      await chrome.storage.session.remove(PENDING_SHARE_KEY);
      const share = freshShare(stored, Date.now());
      if (!share) throw new Error(chrome.i18n.getMessage("shareExpired") || "That share expired; share it again");
      if (share.image) return void (await sendImage(core, { chat: msg.chat, url: share.url, title: share.title }));
      const made = await choosingPreview(share.at);
      await core.sendLink(msg.chat, share.url, made?.title || share.title, share.selection, made?.preview ?? null);
      return;
    }
    case "discardShare":
      return chrome.storage.session.remove(PENDING_SHARE_KEY);
    case "send":
      await core.sendText(msg.chat, msg.text);
      return;
    case "sendFile":
    case "cancelUpload":
    case "retryUpload":
    case "discardUpload":
    case "downloadFile":
      return fileRequest(core, msg);
    case "shareTab": {
      const [tab] = await chrome.tabs.query({ active: true, lastFocusedWindow: true });
      if (!tab?.url) throw new Error(chrome.i18n.getMessage("noTabToShare") || "No page to share");
      const made = await pagePreview(tab.id, tab.url); // opening the popup gave activeTab on this tab
      await core.sendLink(msg.chat, tab.url, made?.title || tab.title || "", "", made?.preview ?? null);
      return;
    }
    case "setFlag":
      return core.setFlag(msg.chat, msg.flag, msg.on);
    case "checkHandle": {
      const { handle, error } = checkHandle(msg.text);
      return post(port, { kind: "handleChecked", text: msg.text, handle, error });
    }
    case "newChat":
      return core.addContact(msg.handle, msg.name || "");
    case "answerRequest":
      return core.answerRequest(msg.handle, msg.action);
    case "setNotifications":
      return core.setNotifications(!!msg.on);
    case "setDeviceName":
      return core.setDeviceName(String(msg.name));
    case "confirmAccount":
      return core.confirmAccount(!!msg.yes);
    case "logout":
      return core.logout();
    case "contactInfo":
      return post(port, { kind: "contactInfo", chat: msg.chat, info: core.contactInfo(msg.chat) });
    case "markVerified":
      await core.markVerified(msg.chat);
      return post(port, { kind: "contactInfo", chat: msg.chat, info: core.contactInfo(msg.chat) });
    case "acceptKey":
      await core.acceptKey(msg.chat);
      return post(port, { kind: "contactInfo", chat: msg.chat, info: core.contactInfo(msg.chat) });
    case "createGroup": {
      const chat = await core.createGroup(msg.name, msg.members);
      return post(port, { kind: "groupCreated", chat });
    }
    case "changeGroup":
      return core.changeGroup(msg.chat, msg.op);
    case "messageReceipts":
      return post(port, { kind: "receipts", chat: msg.chat, id: msg.id, receipts: core.messageReceipts(msg.chat, msg.id) });
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
      return post(port, await searchReply(core, msg.query, msg.chat));
    default: {
      /** @type {never} */
      const unknown = msg;
      throw new Error(`unhandled request: ${JSON.stringify(unknown)}`);
    }
  }
}

/**
 * The first-run screen's server: checked with /healthz, then kept.
 * @param {Core} core
 * @param {chrome.runtime.Port} port
 * @param {string} typed
 */
async function setServer(core, port, typed) {
  const url = String(typed || "").trim().replace(/\/+$/, "");
  /** @type {{ status?: string, fingerprint?: string }} */
  let body;
  try {
    const resp = await fetch(`${url}/healthz`, { cache: "no-store" });
    body = await resp.json();
    if (!resp.ok || body.status !== "ok") throw new Error(body.status || resp.statusText);
  } catch (err) {
    const error = chrome.i18n.getMessage("serverUnreachable", [url]) || errorMessage(err);
    return post(port, { kind: "serverChecked", ok: false, fingerprint: null, error });
  }
  await core.setServer(url);
  post(port, { kind: "serverChecked", ok: true, fingerprint: formatFingerprint(body.fingerprint || "") || null, error: null });
}
