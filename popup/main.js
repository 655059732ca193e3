// @ts-check
// The popup is a view: it renders what the worker sends and holds no domain
// state. It paints at once from the snapshot cached in storage.session, then
// follows the snapshots and chat histories the worker pushes over the Port
// (port.js), and turns clicks and keys into commands for the worker.
//
// Modules: cached.js (the cached snapshot, read early), state.js (what is
// remembered), port.js (the Port), dom.js /
// icons.js / format.js (helpers), header.js, menu.js, keys.js, and one
// module per screen under screens/.

import { cachedSnapshot } from "./cached.js";
import { $, localise, onceAFrame, t, toast } from "./dom.js";
import { renderBanner, renderHeader, renderStartError } from "./header.js";
import { closeMenu } from "./menu.js";
import { post, start } from "./port.js";
import { CHAT_RENDER, applyChatMessage, chatScreen, wireChatViews } from "./views.js";
import { openChat } from "./screens/chat.js";
import { refreshContact } from "./screens/contact.js";
import { renderConfirm, renderUnlinked, wireLink } from "./screens/link.js";
import { renderFacts } from "./screens/settings.js";
import { renderSetup, wireSetup } from "./screens/setup.js";
import { SCREENS, data, onRedraw, redraw, ui } from "./state.js";
import { PENDING_SHARE_TTL_MS, freshShare } from "../common/messages.js";

/** @typedef {import("./state.js").Screen} Screen */
/** @typedef {import("./state.js").Snapshot} Snapshot */
/** @typedef {import("../common/messages.js").WorkerMessage} WorkerMessage */

/** The screen the snapshot and the view state call for. @returns {Screen} */
function currentScreen() {
  const state = data.snap?.state;
  if (!state) return "starting";
  if (state === "setup") return "setup";
  if (state === "linking") return "linking";
  if (state === "confirm") return "confirm";
  if (ui.settings) return "settings";
  if (state !== "linked") return "unlinked";
  return chatScreen();
}

/** @type {Partial<Record<Screen, () => void>>} */
const RENDER = {
  setup: renderSetup,
  unlinked: renderUnlinked,
  confirm: renderConfirm,
  ...CHAT_RENDER,
};

/** Shows the screen the state calls for and paints it. */
function render() {
  const screen = currentScreen();
  const from = ui.screen;
  ui.screen = screen;
  const view = $("view");
  view.dataset.state = data.snap?.state ?? "starting";
  view.dataset.screen = screen;
  if (screen === "starting" || screen === "linking") view.setAttribute("aria-busy", "true");
  else view.removeAttribute("aria-busy");
  for (const s of SCREENS) $(`screen-${s}`).hidden = s !== screen;
  if (screen !== from) closeMenu(false);
  renderHeader(screen);
  renderBanner();
  RENDER[screen]?.();
  if (screen === "list" && !performance.getEntriesByName("tether:list").length && document.querySelector("#chat-list [data-chat]")) {
    performance.mark("tether:list"); // the chat list's first paint, for `cargo xtask bench history`
  }
  renderFacts();
  if (screen !== from) focusFor(screen, from);
}

/**
 * Puts the keyboard where the new screen expects it.
 * @param {Screen} screen
 * @param {Screen} from
 */
function focusFor(screen, from) {
  /** @type {Partial<Record<Screen, string>>} */
  const target = { setup: "server-input", chat: "composer", newchat: "new-chat-input", newgroup: "group-name-input", settings: "back", list: "search", contact: "back", group: "back", requests: "back" };
  const id = screen === "newgroup" && ui.picker?.mode === "add" ? "group-search" : target[screen];
  if (screen === "list" && from === "chat" && ui.lastChat) {
    const row = document.querySelector(`#screen-list [data-chat="${CSS.escape(ui.lastChat)}"] .chat-open`);
    if (row instanceof HTMLElement) return row.focus();
  }
  if (id) $(id).focus();
}

/** @param {Snapshot | undefined} next */
function onSnapshot(next) {
  if (!next) return;
  const before = data.snap?.state ?? null;
  data.snap = next;
  if (before !== next.state) {
    // A new link state starts from its own first screen.
    ui.settings = false;
    ui.logoutConfirm = false;
    if (next.state !== "linked") {
      ui.chat = null;
      ui.contactOpen = false;
      ui.newChat = false;
      ui.picker = null;
      ui.requests = false;
      data.history = null;
    }
  }
  paintSoon();
}

/** The screen, painted once before the next frame however many snapshots came in meanwhile. */
const paintSoon = onceAFrame(() => {
  render();
  refreshContact();
});

/** @param {WorkerMessage} msg */
function onMessage(msg) {
  if (applyChatMessage(msg)) return;
  switch (msg.kind) {
    case "snapshot":
      onSnapshot(msg.snapshot);
      break;
    case "serverChecked":
      ui.checking = false;
      ui.check = msg;
      render();
      break;
    case "error":
      if (ui.checking) {
        ui.checking = false;
        ui.check = { ok: false, fingerprint: null, error: msg.message };
        render();
      } else if (!data.snap) renderStartError(msg.message);
      else toast(msg.message, true);
      break;
    default: {
      // A message kind added to common/messages.js and not handled here fails tsc.
      /** @type {never} */
      const unhandled = msg;
      void unhandled;
    }
  }
}

function wire() {
  wireChatViews();
  wireSetup();
  wireLink();
}

/** Opened for a purpose: a notification's chat (from storage or the URL), or a share to place. */
async function openForPurpose() {
  const stored = await chrome.storage.session.get(["openChat", "pendingShare"]);
  const chat = /** @type {string | undefined} */ (stored.openChat);
  const target = chat || new URLSearchParams(location.hash.slice(1)).get("chat");
  const pendingShare = freshShare(stored.pendingShare, Date.now());
  if (pendingShare) {
    ui.pendingShare = pendingShare;
    toast(t("choosePendingShare", pendingShare.title || pendingShare.url));
    // It expires while the popup stays open too.
    window.setTimeout(() => {
      if (ui.pendingShare !== pendingShare) return;
      ui.pendingShare = null;
      redraw();
    }, pendingShare.at + PENDING_SHARE_TTL_MS - Date.now());
  } else if (stored.pendingShare) {
    post({ kind: "discardShare" }); // stale: dropped unsent
  }
  if (!target) return;
  chrome.storage.session.remove("openChat").catch(() => {});
  const open = () => (data.snap?.state === "linked" ? openChat(target) : window.setTimeout(open, 100));
  open();
}

// ---- start ------------------------------------------------------------------

onRedraw(render);
localise();
wire();

// Paint at once from the cached snapshot (asked for before the rest ran), then follow the worker.
cachedSnapshot.then((snap) => {
  if (!data.snap) onSnapshot(snap);
});

openForPurpose().catch(() => {});

start({
  message: onMessage,
  reconnected: () => {
    post({ kind: "snapshot" });
    if (ui.chat) post({ kind: "openChat", chat: ui.chat });
    refreshContact();
  },
});
post({ kind: "snapshot" });
