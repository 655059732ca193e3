// @ts-check
// Tether's phone web app: the account's primary device, in a browser. The
// core (src/, feature `app`) runs in this page (engine.js) with IndexedDB
// as its store; the page shows the web app's own screens (screens/) and
// the popup's chat screens (chats.js). Views hold no state of their own:
// what they show comes from the core's snapshot, and state.js keeps only
// which screen is open and what is being typed.
//
// Addressable elements (for the end-to-end tests):
//   document.body.dataset.screen   the screen shown: starting, welcome,
//       register, phrase, phrase-confirm, restore, link, link-code,
//       link-confirm, link-progress, devices, or a chat screen of the
//       popup's (list, chat, newchat, contact, requests, settings)
//   welcome      #welcome-register, #welcome-restore
//   register     #register-handle, #register-name, #register-submit, #register-error, #register-back
//   phrase       #phrase-words (24 <li>, data-index 1…24), #phrase-next, #phrase-error
//   phrase-confirm  #phrase-confirm (form), #phrase-confirm-1/-2/-3 (labelled
//       "Word N" by #phrase-confirm-label-1/-2/-3), #phrase-confirm-submit,
//       #phrase-confirm-error, #phrase-back
//   restore      #restore-handle, #restore-phrase, #restore-submit, #restore-error, #restore-back
//   navigation   #nav-chats, #link-device, #open-devices (bottom bar)
//   link         #camera (video; data-kind refused|missing|insecure|other when
//       it could not start), #scan-status (data-kind info|problem),
//       #camera-retry, #enter-code, #link-cancel
//   link-code    #code-input, #code-submit, #code-error, #code-waiting, #code-scan
//   link-confirm #link-confirm-title ("Link Chrome on Linux?"),
//       #link-confirm-name, #link-confirm-platform, #link-confirm-server,
//       #link-confirmation (6 digits, pairing codes), #link-confirm-yes,
//       #link-confirm-no
//   link-progress #link-progress-title, #link-progress-body, #link-done
//   devices      #devices-list [data-device=ID] (.logout, then .logout-confirm),
//       #devices-link
//   chats        the popup's ids (popup/popup.html): #chat-list, #composer, …

import { closeChatLayer, goBack } from "../popup/keys.js";
import { ready } from "./engine.js";
import { chatScreen, renderChats, setUpChats, toList } from "./chats.js";
import { afterRegistered, renderPhrase, renderPhraseConfirm, renderRegister, renderRestore, renderWelcome, wireAccount } from "./screens/account.js";
import { renderDevices, enterDevices, wireDevices } from "./screens/devices.js";
import { enterCamera, leaveCamera, openLink, renderLink, renderLinkCode, renderLinkConfirm, renderLinkProgress, wireLinkScreens } from "./screens/link.js";
import { app, el, errorText, onRender } from "./state.js";

/** @typedef {import("./state.js").AppScreen} AppScreen */
/** @typedef {import("../wasm/tether_app.js").Snapshot} Snapshot */

/** The screen the snapshot and the view state call for. @returns {AppScreen} */
function currentScreen() {
  const snap = app.snap;
  if (!snap) return "starting";
  if (!snap.account) {
    if (app.registering) return "register";
    if (app.restoring) return "restore";
    return app.start;
  }
  if (app.phrase) return app.phrase.confirming ? "phrase-confirm" : "phrase";
  const primary = snap.primary;
  if (primary?.request) return "link-confirm";
  if (primary?.progress && primary.progress.stage !== "pairing") return "link-progress";
  if (app.overlay) return app.overlay;
  return "chats";
}

/** @type {Partial<Record<AppScreen, () => void>>} */
const RENDER = {
  welcome: renderWelcome,
  register: renderRegister,
  phrase: renderPhrase,
  "phrase-confirm": renderPhraseConfirm,
  restore: renderRestore,
  link: renderLink,
  "link-code": renderLinkCode,
  "link-confirm": renderLinkConfirm,
  "link-progress": renderLinkProgress,
  devices: renderDevices,
  chats: renderChats,
};

/** @type {AppScreen} */
let shown = "starting";

// ---- the phone's back button ----------------------------------------------------------
// One history entry stands for "somewhere below the first screen": going
// deeper pushes it, the back button pops it and goes one step up (then it
// is pushed again while still below), and coming back up by a button takes
// it off, so back on the first screen leaves the app as people expect.

/** @param {string} name the screen shown (a chat screen's popup name) */
const isTop = (name) => name === "starting" || name === "welcome" || name === "list";
/** A history.back() of our own is under way: its popstate is not the person's. */
let unwinding = false;

/** @param {string} name */
function syncHistory(name) {
  // history.back() lands later (on its popstate): until then the entry still
  // reads deep, and a second back here would leave the app. The popstate
  // syncs again with whatever is shown by then.
  if (unwinding) return;
  const deep = !!history.state?.tetherDeep;
  if (!isTop(name) && !deep) history.pushState({ tetherDeep: true }, "");
  else if (isTop(name) && deep) {
    unwinding = true;
    history.back();
  }
}

/** The back button: one step up from wherever the person is. */
function onBack() {
  if (unwinding) {
    unwinding = false;
    syncHistory(document.body.dataset.screen ?? "starting");
    return;
  }
  // A photo open full size (popup/screens/files.js) closes first; the chat stays.
  const photo = document.querySelector(".image-overlay");
  if (photo) {
    photo.remove();
    history.pushState({ tetherDeep: true }, "");
    return;
  }
  const screen = currentScreen();
  if (screen === "register" || screen === "restore") {
    if (!app.registering && !app.restoring) app.start = "welcome";
  } else if (screen === "phrase-confirm" && app.phrase) app.phrase = { ...app.phrase, confirming: false, error: null };
  else if (screen === "link-confirm") ready.then((core) => core.clearLink()).catch(() => {});
  else if (screen === "link" || screen === "link-code" || screen === "devices") app.overlay = null;
  else if (screen === "chats") {
    // A message's menu, the chat's search, a reply or an edit close first; the chat stays.
    if (closeChatLayer()) return void history.pushState({ tetherDeep: true }, "");
    goBack();
  }
  render();
}

function render() {
  const screen = currentScreen();
  const from = shown;
  shown = screen;
  if (from === "link" && screen !== "link") leaveCamera();
  if (screen === "link" && from !== "link") enterCamera();
  if (screen === "devices" && from !== "devices") enterDevices();
  for (const section of document.querySelectorAll("#app-screens > .app-screen")) {
    /** @type {HTMLElement} */ (section).hidden = /** @type {HTMLElement} */ (section).dataset.for !== screen;
  }
  el("chat-ui").hidden = screen !== "chats";
  RENDER[screen]?.();
  const name = screen === "chats" ? chatScreen() : screen;
  document.body.dataset.screen = name;
  syncHistory(name);
  const nav = name === "list" || screen === "devices" || screen === "link-code";
  el("app-nav").hidden = !nav;
  el("nav-chats").setAttribute("aria-current", String(name === "list"));
  el("open-devices").setAttribute("aria-current", String(screen === "devices"));
  el("link-device").setAttribute("aria-current", String(screen === "link-code"));
  if (screen !== from) {
    const focus = /** @type {Partial<Record<AppScreen, string>>} */ ({ register: "register-handle", restore: "restore-handle", "phrase-confirm": "phrase-confirm-1" })[screen];
    if (focus) el(focus).focus();
    window.scrollTo(0, 0);
  }
}

/** @param {Snapshot} snap */
function onSnapshot(snap) {
  const had = !!app.snap?.account;
  app.snap = snap;
  if (!had && snap.account) {
    if (app.registering) afterRegistered();
    app.restoring = false;
  }
  if (had && !snap.account) {
    // Logged out (the account was restored on another phone): start over.
    app.start = "welcome";
    app.phrase = null;
    app.overlay = null;
    toList();
  }
}

function wireNav() {
  el("nav-chats").addEventListener("click", () => {
    app.overlay = null;
    toList();
    render();
  });
  el("link-device").addEventListener("click", openLink);
  el("open-devices").addEventListener("click", () => {
    app.overlay = "devices";
    render();
  });
}

async function main() {
  onRender(render);
  window.addEventListener("popstate", onBack);
  wireAccount();
  wireLinkScreens();
  wireDevices();
  wireNav();
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("sw.js", { scope: "/" }).catch((err) => console.warn("tether: no offline shell:", errorText(err)));
  }
  try {
    await ready;
    await setUpChats(render, onSnapshot);
  } catch (err) {
    const failed = el("start-failed");
    failed.textContent = `Tether did not start: ${errorText(err)}`;
    failed.hidden = false;
  }
}

main();
