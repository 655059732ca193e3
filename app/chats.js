// @ts-check
// The chat screens of the web app are the popup's own (popup/screens/*):
// chat list (unread, pins, mute, archive), chat (receipts, link cards),
// new chat from contacts, contact info with the safety number, message
// requests and settings. This module does for them what popup/main.js
// does in the extension — loads their markup (popup/popup.html), keeps
// popup/state.js's `data` from what the core says, and paints the screen
// the state calls for — with the core in this page (router.js) instead of
// the service worker.

import { $, localise, onceAFrame, toast } from "../popup/dom.js";
import { renderBanner, renderHeader } from "../popup/header.js";
import { closeMenu } from "../popup/menu.js";
import { post, start } from "../popup/port.js";
import { CHAT_RENDER, applyChatMessage, chatScreen as linkedScreen, wireChatViews } from "../popup/views.js";
import { openChat } from "../popup/screens/chat.js";
import { refreshContact } from "../popup/screens/contact.js";
import { renderFacts } from "../popup/screens/settings.js";
import { SCREENS, data, onRedraw, ui } from "../popup/state.js";

/** @typedef {import("../popup/state.js").Screen} Screen */
/** @typedef {import("../common/messages.js").WorkerMessage} WorkerMessage */
/** @typedef {import("../common/messages.js").Snapshot} Snapshot */

/** The popup screen the view state calls for (the account exists). @returns {Screen} */
export function chatScreen() {
  return data.snap ? linkedScreen() : "starting";
}

/** Paints the popup screen the state calls for. */
export function renderChats() {
  const screen = chatScreen();
  const from = ui.screen;
  ui.screen = screen;
  const view = $("view");
  view.dataset.state = data.snap?.state ?? "starting";
  view.dataset.screen = screen;
  view.removeAttribute("aria-busy");
  for (const s of SCREENS) $(`screen-${s}`).hidden = s !== screen;
  if (screen !== from) closeMenu(false);
  renderHeader(screen);
  renderBanner();
  CHAT_RENDER[screen]?.();
  renderFacts();
}

/** Back to the chat list from any popup screen. */
export function toList() {
  if (ui.chat) post({ kind: "closeChat" });
  ui.chat = null;
  ui.contactOpen = false;
  ui.newChat = false;
  ui.picker = null;
  ui.requests = false;
  ui.settings = false;
  data.history = null;
}

/**
 * Loads the popup's markup into #chat-ui and wires its screens.
 * `repaint` paints the whole app (main.js) when the popup state changes.
 * @param {() => void} repaint
 * @param {(snapshot: Snapshot) => void} onSnapshot what main.js does with each snapshot
 */
export async function setUpChats(repaint, onSnapshot) {
  const html = await fetch(new URL("../popup/popup.html", import.meta.url)).then((r) => r.text());
  const doc = new DOMParser().parseFromString(html, "text/html");
  // Its image paths are relative to popup/: make them relative to the app.
  for (const img of doc.querySelectorAll("img[src^='../']")) img.setAttribute("src", String(img.getAttribute("src")).slice(3));
  $("chat-ui").replaceChildren(...[...doc.body.children].map((node) => document.importNode(node, true)));
  localise();
  onRedraw(repaint);
  wireChatViews();
  const paintSoon = onceAFrame(() => {
    repaint();
    refreshContact();
  });
  start({ message: (msg) => onMessage(msg, paintSoon, onSnapshot), reconnected: () => {} });
  post({ kind: "snapshot" });
  // Opened from a notification: its chat.
  const chat = new URLSearchParams(location.hash.slice(1)).get("chat");
  if (chat) {
    history.replaceState(null, "", location.pathname);
    const open = () => (data.snap?.account ? openChat(chat) : window.setTimeout(open, 100));
    open();
  }
}

/**
 * @param {WorkerMessage} msg
 * @param {() => void} repaint
 * @param {(snapshot: Snapshot) => void} onSnapshot
 */
function onMessage(msg, repaint, onSnapshot) {
  if (applyChatMessage(msg)) return;
  switch (msg.kind) {
    case "snapshot":
      data.snap = msg.snapshot;
      onSnapshot(msg.snapshot);
      repaint();
      break;
    case "serverChecked":
      break;
    case "error":
      toast(msg.message, true);
      break;
    default: {
      /** @type {never} */
      const unhandled = msg;
      void unhandled;
    }
  }
}
