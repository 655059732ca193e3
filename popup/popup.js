// The popup is a view: it renders what the worker sends and holds no state of
// its own. It paints at once from the cached snapshot in storage.session, then
// follows the live snapshots and chat histories the worker pushes over a
// runtime Port, and turns clicks and keys into commands for the worker.
//
// The only things kept here are view state (which screen, which chat is open,
// what is typed in a box, whether a section is expanded) and the last message
// received from the worker, so the screen can be redrawn.

const $ = (id) => document.getElementById(id);

/** A localised string; a missing key shows as the key itself so it is easy to spot. */
function t(key, ...subs) {
  return chrome.i18n.getMessage(key, subs.map(String)) || key;
}

// ---- view state ---------------------------------------------------------------

/** The worker's latest snapshot, as received (never changed here). */
let snap = null;
/** The open chat's history as the worker last sent it: `{chat, messages}`. */
let history = null;
/** The build's default server, shown in the first-run box when the worker has none. */
let defaultServer = "";

const ui = {
  screen: "starting",
  /** Handle of the open chat, or null for the chat list. */
  chat: null,
  /** The chat last open, so going back puts the keyboard on its row. */
  lastChat: null,
  settings: false,
  newChat: false,
  query: "",
  contactQuery: "",
  archivedOpen: false,
  /** Which chat the row menu is open for, and the button it hangs from. */
  menu: null,
  logoutConfirm: false,
  /** First run: a check is under way; the last serverChecked answer. */
  checking: false,
  check: null,
  setupTouched: false,
  dismissedError: null,
  /** Unsent text per chat, so going back and forth loses nothing. */
  drafts: new Map(),
  /** The QR / code currently drawn, and when it was first seen (for the meter). */
  link: { uri: undefined, seenMs: 0, lifeMs: 1 },
  /** What the message list showed last, to know when to scroll to the bottom. */
  shown: { chat: null, lastId: null, count: 0 },
};

const SCREENS = ["starting", "setup", "unlinked", "linking", "list", "chat", "newchat", "settings"];

// ---- icons --------------------------------------------------------------------

// 24×24 stroke icons. "c:x,y,r" is a circle, "r:x,y,w,h,rx" a rectangle, anything
// else a path. Icons whose name ends in "Fill" are filled instead of stroked.
const ICONS = {
  back: ["M19 12H5", "m12 19-7-7 7-7"],
  settings: [
    "M12.22 2h-.44a2 2 0 0 0-2 2v.18a2 2 0 0 1-1 1.73l-.43.25a2 2 0 0 1-2 0l-.15-.08a2 2 0 0 0-2.73.73l-.22.38a2 2 0 0 0 .73 2.73l.15.1a2 2 0 0 1 1 1.72v.51a2 2 0 0 1-1 1.74l-.15.09a2 2 0 0 0-.73 2.73l.22.38a2 2 0 0 0 2.73.73l.15-.08a2 2 0 0 1 2 0l.43.25a2 2 0 0 1 1 1.73V20a2 2 0 0 0 2 2h.44a2 2 0 0 0 2-2v-.18a2 2 0 0 1 1-1.73l.43-.25a2 2 0 0 1 2 0l.15.08a2 2 0 0 0 2.73-.73l.22-.39a2 2 0 0 0-.73-2.73l-.15-.08a2 2 0 0 1-1-1.74v-.5a2 2 0 0 1 1-1.74l.15-.09a2 2 0 0 0 .73-2.73l-.22-.38a2 2 0 0 0-2.73-.73l-.15.08a2 2 0 0 1-2 0l-.43-.25a2 2 0 0 1-1-1.73V4a2 2 0 0 0-2-2z",
    "c:12,12,3",
  ],
  newChat: ["M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z", "M12 7v6", "M9 10h6"],
  search: ["c:11,11,7", "m20 20-4.2-4.2"],
  more: ["c:12,5,1", "c:12,12,1", "c:12,19,1"],
  pin: [
    "M12 17v5",
    "M9 10.76a2 2 0 0 1-1.11 1.79l-1.78.9A2 2 0 0 0 5 15.24V16a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-.76a2 2 0 0 0-1.11-1.79l-1.78-.9A2 2 0 0 1 15 10.76V7a1 1 0 0 1 1-1 2 2 0 0 0 0-4H8a2 2 0 0 0 0 4 1 1 0 0 1 1 1z",
  ],
  bellOff: [
    "M8.7 3A6 6 0 0 1 18 8a21.3 21.3 0 0 0 .6 5",
    "M17 17H3s3-2 3-9a4.67 4.67 0 0 1 .3-1.7",
    "M10.3 21a1.94 1.94 0 0 0 3.4 0",
    "m2 2 20 20",
  ],
  archive: ["r:2,3,20,5,1", "M4 8v11a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8", "M10 12h4"],
  share: ["M4 12v7a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-7", "m16 6-4-4-4 4", "M12 2v13"],
  sendFill: ["M3.4 20.4 21 12 3.4 3.6 3.4 10.2 15 12 3.4 13.8z"],
  chevronDown: ["m6 9 6 6 6-6"],
  check: ["M20 6 9 17l-5-5"],
  checks: ["M17 7 7.5 16.5 3 12", "m22 7-9.5 9.5-1.2-1.2"],
  clock: ["c:12,12,9", "M12 7v5l3 2"],
  alert: ["m21.73 18-8-14a2 2 0 0 0-3.48 0l-8 14A2 2 0 0 0 4 21h16a2 2 0 0 0 1.73-3", "M12 9v4", "M12 17h.01"],
  lock: ["r:4,11,16,10,2", "M8 11V7a4 4 0 0 1 8 0v4"],
  close: ["M18 6 6 18", "m6 6 12 12"],
  refresh: ["M21 12a9 9 0 1 1-2.64-6.36L21 8", "M21 3v5h-5"],
  logout: ["M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4", "m16 17 5-5-5-5", "M21 12H9"],
  server: ["r:3,3,18,7,2", "r:3,14,18,7,2", "M7 6.5h.01", "M7 17.5h.01"],
  link: [
    "M10 13a5 5 0 0 0 7.54.54l3-3a5 5 0 0 0-7.07-7.07l-1.72 1.71",
    "M14 11a5 5 0 0 0-7.54-.54l-3 3a5 5 0 0 0 7.07 7.07l1.71-1.71",
  ],
  userPlus: ["M16 21v-2a4 4 0 0 0-4-4H6a4 4 0 0 0-4 4v2", "c:9,7,4", "M19 8v6", "M22 11h-6"],
  chat: ["M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z"],
};

const SVG_NS = "http://www.w3.org/2000/svg";

/** An inline SVG icon, hidden from assistive technology (its button carries the name). */
function icon(name) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", `icon icon-${name}`);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const filled = name.endsWith("Fill");
  svg.setAttribute("fill", filled ? "currentColor" : "none");
  if (!filled) {
    svg.setAttribute("stroke", "currentColor");
    svg.setAttribute("stroke-width", "2");
    svg.setAttribute("stroke-linecap", "round");
    svg.setAttribute("stroke-linejoin", "round");
  }
  for (const part of ICONS[name] ?? []) {
    let el;
    if (part.startsWith("c:")) {
      const [cx, cy, r] = part.slice(2).split(",");
      el = document.createElementNS(SVG_NS, "circle");
      Object.entries({ cx, cy, r }).forEach(([k, v]) => el.setAttribute(k, v));
    } else if (part.startsWith("r:")) {
      const [x, y, width, height, rx] = part.slice(2).split(",");
      el = document.createElementNS(SVG_NS, "rect");
      Object.entries({ x, y, width, height, rx }).forEach(([k, v]) => el.setAttribute(k, v));
    } else {
      el = document.createElementNS(SVG_NS, "path");
      el.setAttribute("d", part);
    }
    svg.append(el);
  }
  return svg;
}

// ---- small DOM helpers ----------------------------------------------------------

/** Creates an element: `h("span", {class: "x"}, "text", child)`. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "style") el.setAttribute("style", v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** Sets a control's accessible name and tooltip. */
function label(el, text) {
  el.setAttribute("aria-label", text);
  el.title = text;
}

/** Fills the static markup's strings and icons. */
function localise(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-label]")) label(el, t(el.dataset.i18nLabel));
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-icon]")) el.prepend(icon(el.dataset.icon));
  const mac = /Mac|iPhone|iPad/.test(navigator.platform);
  $("search-kbd").textContent = mac ? "⌘K" : "Ctrl K";
}

/** A sentence with inline `<code>` parts: the message is fetched with markers and split on them. */
function richLine(key, ...parts) {
  const marks = parts.map((_, i) => `\u0001${i}\u0001`);
  const text = t(key, ...marks);
  const out = [];
  for (const piece of text.split("\u0001")) {
    if (/^\d+$/.test(piece) && parts[Number(piece)] !== undefined) out.push(parts[Number(piece)]);
    else if (piece) out.push(piece);
  }
  return out;
}

// ---- formatting -------------------------------------------------------------------

const locale = chrome.i18n.getUILanguage?.() || undefined;
const fmtTime = new Intl.DateTimeFormat(locale, { hour: "numeric", minute: "2-digit" });
const fmtWeekday = new Intl.DateTimeFormat(locale, { weekday: "short" });
const fmtDate = new Intl.DateTimeFormat(locale, { day: "numeric", month: "short" });
const fmtDateYear = new Intl.DateTimeFormat(locale, { day: "numeric", month: "short", year: "numeric" });
const fmtDay = new Intl.DateTimeFormat(locale, { weekday: "long", day: "numeric", month: "long" });

function startOfDay(ms) {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/** How many calendar days ago `ms` was (0 today, 1 yesterday). */
function daysAgo(ms) {
  return Math.round((startOfDay(Date.now()) - startOfDay(ms)) / 86400000);
}

/** The chat list's time column: time today, "Yesterday", weekday this week, else the date. */
function listTime(ms) {
  if (!ms) return "";
  const ago = daysAgo(ms);
  if (ago <= 0) return fmtTime.format(ms);
  if (ago === 1) return t("yesterday");
  if (ago < 7) return fmtWeekday.format(ms);
  return new Date(ms).getFullYear() === new Date().getFullYear() ? fmtDate.format(ms) : fmtDateYear.format(ms);
}

/** A day separator in a chat. */
function dayLabel(ms) {
  const ago = daysAgo(ms);
  if (ago <= 0) return t("today");
  if (ago === 1) return t("yesterday");
  return fmtDay.format(ms);
}

/** m:ss */
function clock(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** Server address without the scheme, for tight spaces. */
function shortServer(url) {
  return String(url || "").replace(/^[a-z]+:\/\//i, "").replace(/\/$/, "");
}

/** Shows a fingerprint's 8 groups on two lines of four. */
function fingerprintLines(fp) {
  const groups = String(fp).split(/[-\s]+/).filter(Boolean);
  if (groups.length < 8) return String(fp);
  return `${groups.slice(0, 4).join(" ")}\n${groups.slice(4).join(" ")}`;
}

const HUES = [168, 205, 232, 262, 292, 330, 14, 38];

/** A round avatar with the name's first letter, its colour picked from the handle. */
function avatar(name, handle, size = "") {
  let hash = 0;
  for (const ch of String(handle)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  const initial = ([...String(name || handle || "?").trim()][0] || "?").toUpperCase();
  return h("span", { class: `avatar ${size}`.trim(), style: `--hue:${HUES[hash % HUES.length]}`, "aria-hidden": "true" }, initial);
}

function paintAvatar(el, name, handle) {
  const a = avatar(name, handle);
  el.textContent = a.textContent;
  el.setAttribute("style", a.getAttribute("style"));
}

// ---- the worker's data, read-only ------------------------------------------------

/** The link state; understands the early snapshot shape `{linked: bool}` as well. */
function stateOf(s) {
  if (s.state) return s.state;
  if (s.linked) return "linked";
  return s.server === "" ? "setup" : "unlinked";
}

const chatsOf = () => snap?.chats ?? [];
const contactsOf = () => snap?.contacts ?? [];
const findChat = (handle) => chatsOf().find((c) => c.handle === handle) ?? null;
const findContact = (handle) => contactsOf().find((c) => c.handle === handle) ?? null;

function displayName(handle) {
  return findChat(handle)?.name || findContact(handle)?.name || handle;
}

/** Pinned first, then most recent. */
function byListOrder(a, b) {
  if (!!a.pinned !== !!b.pinned) return a.pinned ? -1 : 1;
  return (b.lastMs ?? 0) - (a.lastMs ?? 0);
}

function matches(query, ...fields) {
  const q = query.trim().toLowerCase().replace(/^@/, "");
  if (!q) return true;
  return fields.some((f) => String(f ?? "").toLowerCase().includes(q));
}

/** A string that could be a handle someone typed: letters, digits, . _ - */
function asHandle(text) {
  const handle = text.trim().replace(/^@/, "");
  return /^[a-z0-9][a-z0-9._-]{0,63}$/i.test(handle) ? handle.toLowerCase() : null;
}

// ---- the Port to the worker ---------------------------------------------------------

let port = null;
let reconnectTimer = 0;
/** Reconnects in a row without hearing back, for the backoff. */
let reconnects = 0;

function connect() {
  try {
    port = chrome.runtime.connect({ name: "popup" });
  } catch {
    port = null; // the extension was reloaded: this page is orphaned
    return;
  }
  port.onMessage.addListener(onMessage);
  port.onDisconnect.addListener(() => {
    void chrome.runtime.lastError; // read, so Chrome doesn't log it as unchecked
    port = null;
    // The worker went away (stopped or restarted): come back and ask again.
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(() => {
      connect();
      post({ kind: "snapshot" });
      if (ui.chat) post({ kind: "openChat", chat: ui.chat });
    }, Math.min(5000, 200 * 2 ** reconnects++));
  });
}

/** Sends one command to the worker. */
function post(msg) {
  if (!port) connect();
  try {
    port?.postMessage(msg);
  } catch {
    port = null;
    connect();
    try {
      port?.postMessage(msg);
    } catch {
      toast(t("errorWorker"), true);
    }
  }
}

function onMessage(msg) {
  reconnects = 0;
  switch (msg?.kind) {
    case "snapshot":
      onSnapshot(msg.snapshot);
      break;
    case "chat":
      if (msg.chat === ui.chat) {
        history = { chat: msg.chat, messages: msg.messages ?? [] };
        if (ui.screen === "chat") renderChat();
      }
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
      } else if (!snap) {
        renderStartError(msg.message);
      } else {
        toast(msg.message, true);
      }
      break;
  }
}

function onSnapshot(next) {
  if (!next) return;
  const before = snap ? stateOf(snap) : null;
  snap = next;
  const state = stateOf(snap);
  if (before !== state) {
    // A new link state starts from its own first screen.
    ui.settings = false;
    ui.logoutConfirm = false;
    if (state !== "linked") {
      ui.chat = null;
      ui.newChat = false;
      history = null;
    }
  }
  render();
}

// ---- rendering ----------------------------------------------------------------------

function currentScreen() {
  if (!snap) return "starting";
  const state = stateOf(snap);
  if (state === "setup") return "setup";
  if (state === "linking") return "linking";
  if (ui.settings) return "settings";
  if (state !== "linked") return "unlinked";
  if (ui.chat) return "chat";
  if (ui.newChat) return "newchat";
  return "list";
}

const RENDER = {
  setup: renderSetup,
  unlinked: renderUnlinked,
  list: renderList,
  chat: renderChat,
  newchat: renderNewChat,
  settings: renderSettings,
};

function render() {
  const screen = currentScreen();
  const from = ui.screen;
  ui.screen = screen;
  const view = $("view");
  view.dataset.state = snap ? stateOf(snap) : "starting";
  view.dataset.screen = screen;
  if (screen === "starting" || screen === "linking") view.setAttribute("aria-busy", "true");
  else view.removeAttribute("aria-busy");
  for (const s of SCREENS) $(`screen-${s}`).hidden = s !== screen;
  if (screen !== from) closeMenu(false);
  renderHeader(screen);
  renderBanner();
  RENDER[screen]?.();
  if (snap) renderSettingsFacts();
  if (screen !== from) focusFor(screen, from);
}

/** Puts the keyboard where the new screen expects it. */
function focusFor(screen, from) {
  const focus = (el) => el?.focus();
  if (screen === "setup") focus($("server-input"));
  else if (screen === "chat") focus($("composer"));
  else if (screen === "newchat") focus($("new-chat-input"));
  else if (screen === "settings") focus($("back"));
  else if (screen === "list") {
    const row = ui.lastChat && document.querySelector(`#screen-list [data-chat="${CSS.escape(ui.lastChat)}"] .chat-open`);
    focus(from === "chat" && row ? row : $("search"));
  }
}

/** Before any snapshot: the worker answered with an error (the core didn't start). */
function renderStartError(message) {
  $("view").dataset.state = "error";
  $("view").removeAttribute("aria-busy");
  $("starting-spinner").hidden = true;
  $("starting-text").hidden = true;
  $("start-error").hidden = false;
  $("start-error-text").textContent = message;
  $("pill").dataset.state = "error";
  $("pill-text").textContent = "!";
}

function renderHeader(screen) {
  const state = snap ? stateOf(snap) : "starting";
  const inner = screen === "chat" || screen === "settings" || screen === "newchat";
  $("back").hidden = !inner;
  $("logo").hidden = inner;
  $("bar-avatar").hidden = screen !== "chat";
  $("chat-more").hidden = screen !== "chat";
  $("new-chat").hidden = screen !== "list";
  $("settings").hidden = !(screen === "list" || screen === "unlinked");
  $("bar").dataset.screen = screen;

  let title = t("popupTitle");
  let sub = "";
  if (screen === "chat") {
    title = displayName(ui.chat);
    sub = `@${ui.chat}`;
    const chat = findChat(ui.chat);
    if (chat?.muted) sub += ` · ${t("mutedShort")}`;
    if (chat?.archived) sub += ` · ${t("archivedShort")}`;
    paintAvatar($("bar-avatar"), title, ui.chat);
  } else if (screen === "settings") title = t("openSettings");
  else if (screen === "newchat") title = t("newChat");
  else if (screen === "list" && snap?.account) sub = `@${snap.account.handle}`;
  $("title").textContent = title;
  $("subtitle").textContent = sub;
  $("subtitle").hidden = !sub;

  // Status pill: link state before linking, connection once linked (subtle when fine).
  const pill = $("pill");
  let pillState = state;
  let text = "";
  if (state === "starting") text = t("stateStarting");
  else if (state === "unlinked") text = t("stateNotLinkedTitle");
  else if (state === "linking") text = t("linkingTitle");
  else if (state === "linked") {
    pillState = snap.connection ?? "connected";
    text = pillState === "offline" ? t("connOffline") : pillState === "connecting" ? t("connConnecting") : t("connConnected");
  }
  pill.dataset.state = pillState;
  $("pill-text").textContent = text;
  pill.title = text;
  pill.hidden = state === "setup" || (state === "linked" && pillState === "connected" && screen !== "list") || (screen === "settings" && state !== "linked");
}

function renderBanner() {
  const err = snap?.error;
  const show = !!err && err !== ui.dismissedError && ui.screen !== "starting";
  $("banner").hidden = !show;
  if (show) $("banner-text").textContent = err;
}

// ---- first run -------------------------------------------------------------------------

function renderSetup() {
  const input = $("server-input");
  if (!ui.setupTouched) input.value = snap.server || defaultServer;
  const btn = $("check-server");
  btn.disabled = ui.checking;
  btn.classList.toggle("busy", ui.checking);
  btn.querySelector("span:last-child").textContent = ui.checking ? t("checkingServer") : t("checkServer");
  const box = $("setup-result");
  box.replaceChildren();
  box.className = "check-result";
  input.removeAttribute("aria-invalid");
  if (ui.check && !ui.checking) {
    if (ui.check.ok) {
      box.classList.add("ok");
      box.append(
        h("p", { class: "strong" }, icon("lock"), t("serverOk")),
        h("p", { class: "muted small" }, t("labelFingerprint")),
        h("code", { id: "setup-fingerprint", class: "fingerprint" }, fingerprintLines(ui.check.fingerprint ?? "–")),
      );
    } else {
      box.classList.add("bad");
      input.setAttribute("aria-invalid", "true");
      box.append(h("p", { id: "setup-error" }, icon("alert"), ui.check.error || t("serverUnreachable", $("server-input").value.trim())));
    }
  }
}

function submitServer(event) {
  event.preventDefault();
  const url = $("server-input").value.trim();
  if (!/^(https?|wss?):\/\/[^\s/]+/i.test(url)) {
    ui.check = { ok: false, fingerprint: null, error: t("serverInvalid") };
    render();
    $("server-input").focus();
    return;
  }
  ui.checking = true;
  ui.check = null;
  render();
  post({ kind: "setServer", url });
}

// ---- not linked: QR / pairing code ------------------------------------------------------

/** Parses the core's QR SVG (trusted, but still only ever inserted as SVG nodes). */
function qrNode(svgText) {
  const doc = new DOMParser().parseFromString(svgText, "image/svg+xml");
  const root = doc.documentElement;
  if (root.nodeName !== "svg" || doc.querySelector("parsererror")) return null;
  for (const bad of root.querySelectorAll("script, foreignObject")) bad.remove();
  for (const el of [root, ...root.querySelectorAll("*")]) {
    for (const attr of [...el.attributes]) if (/^on/i.test(attr.name)) el.removeAttribute(attr.name);
  }
  root.removeAttribute("width");
  root.removeAttribute("height");
  root.setAttribute("shape-rendering", "crispEdges");
  root.setAttribute("aria-hidden", "true");
  root.setAttribute("focusable", "false");
  return document.importNode(root, true);
}

const QR_MIN_PX = 220;

/**
 * The size to draw a QR at: a whole number of pixels per module, at least
 * QR_MIN_PX, so a screenshot of the popup decodes (scaling by a fraction gives
 * uneven modules that decoders trip over). The module count is the viewBox
 * width over the module size, the largest unit every coordinate is a multiple of.
 */
function qrPixels(svg) {
  const width = Number((svg.getAttribute("viewBox") ?? "").trim().split(/[\s,]+/)[2]);
  const gcd = (a, b) => (b ? gcd(b, a % b) : a);
  let unit = 0;
  for (const path of svg.querySelectorAll("path")) {
    for (const n of path.getAttribute("d")?.match(/-?\d*\.?\d+/g) ?? []) {
      const v = Math.abs(Number(n));
      if (!Number.isInteger(v)) return QR_MIN_PX;
      unit = gcd(unit, v);
    }
  }
  const modules = unit ? width / unit : NaN;
  if (!Number.isInteger(modules) || modules < 21) return QR_MIN_PX;
  return modules * Math.ceil(QR_MIN_PX / modules);
}

function renderUnlinked() {
  const link = snap.link ?? null;
  const reason = snap.unlinkedReason;
  $("unlinked-reason").hidden = !reason;
  if (reason) $("unlinked-reason-text").textContent = reason;

  $("link-title").hidden = !!reason;
  const codeMode = !!link?.pairingCode;
  const key = link ? `${link.uri}|${link.pairingCode ?? ""}|${link.expiresMs}` : null;
  if (key !== ui.link.uri) {
    ui.link = { uri: key, seenMs: Date.now(), lifeMs: Math.max(1000, (link?.expiresMs ?? 0) - Date.now()) };
    const qr = $("qr");
    const node = link?.qrSvg ? qrNode(link.qrSvg) : null;
    qr.replaceChildren(...(node ? [node] : []));
    qr.classList.toggle("empty", !node);
    if (node) qr.style.setProperty("--qr-px", `${qrPixels(node)}px`);
  }
  $("qr-wrap").hidden = codeMode;
  $("code-wrap").hidden = !codeMode;
  $("pairing-code").textContent = link?.pairingCode ?? "";
  $("with-code").hidden = codeMode;
  $("with-qr").hidden = !codeMode;

  const cmd = (text) => h("code", {}, text);
  const device = snap.deviceName || t("thisBrowser");
  const code = link?.pairingCode ?? "XXXX-XXXX";
  const steps = codeMode
    ? [
        richLine("howToCode1", cmd(`tether link --code ${code}`)),
        richLine("howToCode2"),
        richLine("howTo3", h("strong", {}, t("linkQuestion", device))),
      ]
    : [
        richLine("howTo1", cmd("tether link <screenshot.png>")),
        richLine("howTo2", cmd(`tether link --code ${code}`)),
        richLine("howTo3", h("strong", {}, t("linkQuestion", device))),
      ];
  $("how-to").replaceChildren(...steps.map((parts) => h("li", {}, h("span", {}, ...parts))));

  const fp = snap.serverFingerprint;
  const server = shortServer(snap.server);
  $("unlinked-server").textContent = fp ? t("serverWithKey", server, String(fp).split("-").slice(0, 2).join("-") + "…") : server;
  tickCountdown();
}

/** Whether the link on screen can no longer be used: none, exhausted, or the last one ran out. */
function linkDead(link) {
  if (!link || link.exhausted) return true;
  const last = link.total && link.index >= link.total - 1;
  return !!last && link.expiresMs <= Date.now();
}

/** Updates the QR's countdown; runs every second while the QR is shown. */
function tickCountdown() {
  if (ui.screen !== "unlinked") return;
  const link = snap?.link ?? null;
  const dead = linkDead(link);
  const codeMode = !!link?.pairingCode;
  $("qr-wrap").classList.toggle("dead", dead);
  $("qr-expired").hidden = !dead || codeMode;
  $("code-wrap").classList.toggle("dead", dead);
  $("code-expired").hidden = !dead || !codeMode;
  const box = $("countdown");
  const text = $("countdown-text");
  const meter = $("countdown-bar");
  box.hidden = !link;
  if (dead) {
    box.classList.add("over");
    box.classList.remove("low");
    meter.parentElement.classList.remove("low");
    text.textContent = t("codeExpired");
    meter.style.width = "0%";
    return;
  }
  box.classList.remove("over");
  const left = link.expiresMs - Date.now();
  const last = link.total && link.index >= link.total - 1;
  if (left <= 0) text.textContent = t("codeRefreshing");
  else text.textContent = t(last ? "codeExpiresIn" : "codeRefreshesIn", clock(left));
  const frac = Math.max(0, Math.min(1, left / ui.link.lifeMs));
  meter.style.width = `${(frac * 100).toFixed(1)}%`;
  const low = left < 6000;
  box.classList.toggle("low", low);
  meter.parentElement.classList.toggle("low", low);
}

// ---- chat list -------------------------------------------------------------------------

function renderList() {
  const chats = [...chatsOf()].sort(byListOrder);
  const q = ui.query;
  const searching = q.trim() !== "";
  const visible = chats.filter((c) => (searching || !c.archived) && matches(q, c.name, c.handle, c.lastPreview));
  const archived = chats.filter((c) => c.archived);

  // While searching, contacts without a chat are offered too.
  const people = searching
    ? contactsOf().filter((c) => !findChat(c.handle) && matches(q, c.name, c.handle)).sort(byName).map(contactRow)
    : [];
  if (people.length) people.unshift(h("li", { class: "list-heading", role: "presentation" }, t("contactsLabel")));

  keepFocus(() => {
    $("chat-list").replaceChildren(...visible.map(chatRow), ...people);
    $("archived-list").replaceChildren(...archived.map(chatRow));
  });

  const showArchived = !searching && archived.length > 0;
  $("archived").hidden = !showArchived;
  $("archived-list").hidden = !ui.archivedOpen;
  $("archived-toggle").setAttribute("aria-expanded", String(ui.archivedOpen));
  const archivedUnread = archived.reduce((n, c) => n + (c.unread || 0), 0);
  $("archived-count").textContent = archivedUnread ? String(archivedUnread) : String(archived.length);
  $("archived-count").classList.toggle("has-unread", archivedUnread > 0);

  const empty = $("list-empty");
  empty.replaceChildren();
  empty.hidden = visible.length + people.length > 0;
  if (empty.hidden) return;
  if (searching) {
    empty.append(h("p", { class: "muted" }, t("noMatches", q.trim())));
    const handle = asHandle(q);
    if (handle) {
      empty.append(
        h("button", { class: "btn primary", type: "button", onclick: () => startChat(handle, findContact(handle)?.name ?? "") },
          icon("newChat"), t("startChatWith", handle)),
      );
    }
  } else {
    empty.append(
      h("div", { class: "empty-art" }, icon("chat")),
      h("p", { class: "strong" }, t(archived.length ? "allArchivedTitle" : "noChatsTitle")),
      h("p", { class: "muted small" }, t("noChatsBody")),
      h("button", { class: "btn primary", type: "button", onclick: openNewChat }, icon("newChat"), t("newChat")),
    );
  }
}

/** Re-renders while keeping keyboard focus on the same chat's row, if it had it. */
function keepFocus(fn) {
  const active = document.activeElement;
  const row = active?.closest?.("[data-chat]");
  const handle = row?.dataset.chat;
  const cls = active?.classList?.contains("row-share") ? ".row-share" : active?.classList?.contains("row-more") ? ".row-more" : ".chat-open";
  const inArchive = !!active?.closest?.("#archived-list");
  fn();
  if (handle) {
    const list = inArchive ? "#archived-list" : "#chat-list";
    const again = document.querySelector(`${list} [data-chat="${CSS.escape(handle)}"] ${cls}`)
      ?? document.querySelector(`[data-chat="${CSS.escape(handle)}"] ${cls}`);
    again?.focus({ preventScroll: true });
  }
}

function chatRow(chat) {
  const name = chat.name || chat.handle;
  const unread = chat.unread || 0;
  const flags = h("span", { class: "chat-flags" });
  if (chat.pinned) flags.append(h("span", { class: "flag pinned-icon", title: t("pinned") }, icon("pin")));
  if (chat.muted) flags.append(h("span", { class: "flag muted-icon", title: t("muted") }, icon("bellOff")));
  if (unread) flags.append(h("span", { class: `unread${chat.muted ? " muted" : ""}` }, unread > 99 ? "99+" : String(unread)));

  const time = listTime(chat.lastMs);
  const described = [
    name,
    unread ? t("unreadCount", unread) : "",
    chat.pinned ? t("pinned") : "",
    chat.muted ? t("muted") : "",
    chat.lastPreview ? t("lastMessage", chat.lastPreview) : "",
    time,
  ].filter(Boolean).join(", ");

  const open = h("button", { class: "chat-open", type: "button", "aria-label": described, onclick: () => openChat(chat.handle) },
    avatar(name, chat.handle),
    h("span", { class: "chat-main" },
      h("span", { class: "chat-top" },
        h("span", { class: "chat-name" }, name),
        h("time", { class: "chat-time", datetime: chat.lastMs ? new Date(chat.lastMs).toISOString() : null }, time)),
      h("span", { class: "chat-bottom" },
        h("span", { class: "chat-preview" }, chat.lastPreview || t("noMessagesYet")),
        flags)),
  );
  const share = h("button", { class: "icon-btn row-share", type: "button", onclick: () => shareTab(chat.handle) }, icon("share"));
  label(share, t("sharePageWith", name));
  const more = h("button", { class: "icon-btn row-more", type: "button", "aria-haspopup": "menu", "aria-expanded": "false" }, icon("chevronDown"));
  label(more, t("chatOptionsFor", name));
  more.addEventListener("click", (e) => {
    e.stopPropagation();
    toggleMenu(chat.handle, more);
  });
  return h("li", {
    class: ["chat-row", unread && "has-unread", chat.pinned && "is-pinned", chat.muted && "is-muted", chat.archived && "is-archived"].filter(Boolean).join(" "),
    "data-chat": chat.handle,
  }, open, h("span", { class: "row-actions" }, share, more));
}

// ---- row menu: pin / mute / archive / share --------------------------------------------------

function toggleMenu(handle, anchor) {
  if (ui.menu?.handle === handle && ui.menu.anchor === anchor) closeMenu(true);
  else openMenu(handle, anchor);
}

function openMenu(handle, anchor) {
  closeMenu(false);
  const chat = findChat(handle);
  const menu = $("row-menu");
  const text = (action, s) => (menu.querySelector(`[data-action="${action}"] .menu-text`).textContent = s);
  text("pin", chat?.pinned ? t("unpin") : t("pin"));
  text("mute", chat?.muted ? t("unmute") : t("mute"));
  text("archive", chat?.archived ? t("unarchive") : t("archive"));
  label(menu, t("chatOptionsFor", displayName(handle)));
  ui.menu = { handle, anchor };
  anchor.setAttribute("aria-expanded", "true");
  anchor.closest(".chat-row")?.classList.add("menu-open");
  menu.hidden = false;
  const r = anchor.getBoundingClientRect();
  const m = menu.getBoundingClientRect();
  let top = r.bottom + 4;
  if (top + m.height > window.innerHeight - 8) top = Math.max(8, r.top - m.height - 4);
  const left = Math.max(8, Math.min(r.right - m.width, window.innerWidth - m.width - 8));
  menu.style.top = `${top}px`;
  menu.style.left = `${left}px`;
  menu.querySelector(".menu-item").focus();
}

function closeMenu(restoreFocus) {
  const menu = $("row-menu");
  if (!ui.menu) return;
  const { anchor } = ui.menu;
  ui.menu = null;
  menu.hidden = true;
  anchor.setAttribute("aria-expanded", "false");
  anchor.closest(".chat-row")?.classList.remove("menu-open");
  if (restoreFocus && anchor.isConnected) anchor.focus();
}

function onMenuAction(action) {
  const handle = ui.menu?.handle;
  closeMenu(true);
  if (!handle) return;
  if (action === "share") return shareTab(handle);
  const chat = findChat(handle) ?? { muted: false, archived: false, pinned: false };
  const flags = { muted: !!chat.muted, archived: !!chat.archived, pinned: !!chat.pinned };
  if (action === "pin") flags.pinned = !flags.pinned;
  if (action === "mute") flags.muted = !flags.muted;
  if (action === "archive") flags.archived = !flags.archived;
  post({ kind: "setFlags", chat: handle, ...flags });
  const done = { pin: flags.pinned ? "toastPinned" : "toastUnpinned", mute: flags.muted ? "toastMuted" : "toastUnmuted", archive: flags.archived ? "toastArchived" : "toastUnarchived" };
  toast(t(done[action], displayName(handle)));
}

// ---- one chat ----------------------------------------------------------------------------

function openChat(handle) {
  if (ui.pendingShare) {
    // "Choose chat…" from the context menu: the chosen chat gets the share.
    post({ kind: "sharePending", chat: handle }); // the worker sends it and forgets it
    ui.pendingShare = null;
    toast(t("sharedTo", displayName(handle)));
  }
  if (ui.chat && ui.chat !== handle) post({ kind: "closeChat" });
  ui.chat = handle;
  ui.lastChat = handle;
  ui.newChat = false;
  ui.settings = false;
  if (history?.chat !== handle) history = null;
  const composer = $("composer");
  composer.value = ui.drafts.get(handle) ?? "";
  post({ kind: "openChat", chat: handle });
  render();
  autosize();
}

function closeChat() {
  if (!ui.chat) return;
  post({ kind: "closeChat" });
  ui.chat = null;
  history = null;
  ui.shown = { chat: null, lastId: null, count: 0 };
  render();
}

function renderChat() {
  const handle = ui.chat;
  const contact = findContact(handle);
  $("chat-warning").hidden = !contact?.warning;
  if (contact?.warning) $("chat-warning-text").textContent = contact.warning;

  const box = $("messages");
  const messages = history?.chat === handle ? history.messages : null;
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const prevTop = box.scrollTop;

  const items = [h("div", { class: "e2e-note" }, h("span", {}, icon("lock"), t("e2eNote")))];
  if (!messages) {
    items.push(h("div", { class: "center-screen inline" }, h("div", { class: "spinner", "aria-hidden": "true" }), h("p", { class: "muted small" }, t("loadingMessages"))));
  } else if (!messages.length) {
    const name = displayName(handle);
    items.push(h("div", { class: "chat-empty" }, avatar(name, handle, "lg"), h("p", { class: "strong" }, name), h("p", { class: "muted small" }, t("chatEmpty", name))));
  } else {
    let day = null;
    let prev = null;
    for (const m of messages) {
      const d = startOfDay(m.timeMs);
      if (d !== day) {
        items.push(h("div", { class: "day", role: "separator" }, h("span", {}, dayLabel(m.timeMs))));
        day = d;
        prev = null;
      }
      const grouped = prev && prev.fromMe === m.fromMe && prev.senderHandle === m.senderHandle && m.timeMs - prev.timeMs < 5 * 60000;
      items.push(messageView(m, handle, grouped));
      prev = m;
    }
  }
  box.replaceChildren(...items);
  box.setAttribute("aria-busy", messages ? "false" : "true");

  // Scroll to the bottom on open and when a message arrives; otherwise stay put.
  const last = messages?.at(-1)?.id ?? null;
  const fresh = ui.shown.chat !== handle || ui.shown.lastId !== last || ui.shown.count !== (messages?.length ?? 0);
  if (fresh || atBottom) box.scrollTop = box.scrollHeight;
  else box.scrollTop = prevTop;
  ui.shown = { chat: handle, lastId: last, count: messages?.length ?? 0 };
  $("send").disabled = !$("composer").value.trim();
}

/** One message bubble. */
function messageView(m, chat, grouped) {
  const body = m.body ?? { kind: "text", body: "" };
  const bubble = h("div", { class: "bubble" });
  if (!m.fromMe && m.senderHandle && m.senderHandle !== chat && !grouped) {
    bubble.append(h("span", { class: "sender" }, displayName(m.senderHandle)));
  }
  if (body.kind === "link") bubble.append(...linkCard(body));
  else if (body.kind === "undecryptable") {
    bubble.append(h("p", { class: "undecryptable-text" }, icon("alert"), h("span", {},
      h("strong", {}, t("undecryptableTitle")), " ", h("span", { class: "reason" }, body.reason || t("undecryptableBody")))));
  } else bubble.append(h("p", { class: "msg-text" }, ...linkify(String(body.body ?? ""))));

  const meta = h("span", { class: "msg-meta" }, h("time", { datetime: new Date(m.timeMs).toISOString(), title: new Date(m.timeMs).toLocaleString(locale) }, fmtTime.format(m.timeMs)));
  if (m.fromMe) meta.append(ticks(m.status));
  bubble.append(meta);
  const kind = body.kind === "undecryptable" ? "undecryptable" : body.kind === "link" ? "link" : "text";
  return h("div", {
    class: ["msg", m.fromMe ? "me" : "them", grouped && "grouped", `kind-${kind}`].filter(Boolean).join(" "),
    "data-id": m.id,
    "data-status": m.fromMe ? m.status : null,
  }, bubble);
}

/** ✓ sent, ✓✓ delivered, blue ✓✓ read; a clock while pending. */
function ticks(status) {
  const name = { pending: "clock", sent: "check", delivered: "checks", read: "checks" }[status] ?? "clock";
  const key = { pending: "statusPending", sent: "statusSent", delivered: "statusDelivered", read: "statusRead" }[status] ?? "statusPending";
  const el = h("span", { class: `ticks ${status}`, "data-status": status, role: "img" }, icon(name));
  label(el, t(key));
  return el;
}

function safeUrl(url) {
  try {
    const u = new URL(url);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch {
    return null;
  }
}

/** A shared page: title, address and the quoted selection. */
function linkCard(body) {
  const href = safeUrl(body.url);
  let host = body.url;
  try {
    host = new URL(body.url).host;
  } catch {}
  const card = h(href ? "a" : "div", { class: "link-card", href, target: href ? "_blank" : null, rel: href ? "noopener noreferrer" : null },
    h("span", { class: "link-icon" }, icon("link")),
    h("span", { class: "link-text" },
      h("span", { class: "link-title" }, body.title || host || body.url),
      h("span", { class: "link-url" }, body.url)));
  const out = [card];
  if (body.selection) out.push(h("blockquote", { class: "link-quote" }, body.selection));
  return out;
}

/** Text with http(s) links made clickable. */
function linkify(text) {
  const out = [];
  let at = 0;
  for (const m of text.matchAll(/\bhttps?:\/\/[^\s<>"]+[^\s<>".,;:!?)\]]/g)) {
    if (m.index > at) out.push(text.slice(at, m.index));
    const href = safeUrl(m[0]);
    out.push(href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, m[0]) : m[0]);
    at = m.index + m[0].length;
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}

function autosize() {
  const c = $("composer");
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  c.style.height = "auto";
  c.style.height = `${Math.min(c.scrollHeight, 120)}px`;
  if (atBottom) box.scrollTop = box.scrollHeight;
  $("send").disabled = !c.value.trim();
}

function sendComposer(event) {
  event?.preventDefault();
  const c = $("composer");
  const text = c.value.replace(/^\s*\n|\s+$/g, "");
  if (!text.trim() || !ui.chat) return;
  post({ kind: "send", chat: ui.chat, text });
  c.value = "";
  ui.drafts.delete(ui.chat);
  autosize();
  c.focus();
}

function shareTab(handle) {
  post({ kind: "shareTab", chat: handle });
  toast(t("sharingWith", displayName(handle)));
}

// ---- new chat ------------------------------------------------------------------------------

function openNewChat() {
  ui.newChat = true;
  ui.contactQuery = "";
  $("new-chat-input").value = "";
  render();
}

function startChat(handle, name) {
  if (!findChat(handle)) post({ kind: "newChat", handle, name: name || "" });
  ui.query = "";
  $("search").value = "";
  openChat(handle);
}

const byName = (a, b) => (a.name || a.handle).localeCompare(b.name || b.handle, locale);

/** A contact: avatar, name, handle (or the warning about them); click starts a chat. */
function contactRow(c) {
  const name = c.name || c.handle;
  const b = h("button", { class: "chat-open", type: "button", onclick: () => startChat(c.handle, c.name) },
    avatar(name, c.handle),
    h("span", { class: "chat-main" },
      h("span", { class: "chat-top" }, h("span", { class: "chat-name" }, name)),
      h("span", { class: "chat-bottom" },
        c.warning
          ? h("span", { class: "chat-preview warn-text" }, icon("alert"), h("span", { class: "ellipsis" }, c.warning))
          : h("span", { class: "chat-preview" }, `@${c.handle}`))));
  return h("li", { class: "chat-row contact-row", "data-handle": c.handle }, b);
}

function renderNewChat() {
  const q = ui.contactQuery;
  const contacts = contactsOf().filter((c) => matches(q, c.name, c.handle)).sort(byName);
  const rows = [];
  const handle = asHandle(q);
  if (handle && !contactsOf().some((c) => c.handle === handle)) {
    const b = h("button", { class: "chat-open", type: "button", onclick: () => startChat(handle, "") },
      h("span", { class: "avatar new" }, icon("userPlus")),
      h("span", { class: "chat-main" },
        h("span", { class: "chat-top" }, h("span", { class: "chat-name" }, t("startChatWith", handle))),
        h("span", { class: "chat-bottom" }, h("span", { class: "chat-preview" }, t("startChatHint")))));
    rows.push(h("li", { class: "chat-row contact-row new-handle", "data-handle": handle }, b));
  }
  if (contacts.length) rows.push(h("li", { class: "list-heading", role: "presentation" }, t("contactsLabel")));
  rows.push(...contacts.map(contactRow));
  $("contact-list").replaceChildren(...rows);
  const empty = $("contacts-empty");
  empty.hidden = rows.length > 0;
  empty.replaceChildren(h("p", { class: "muted" }, q.trim() ? t("noContactsMatch", q.trim()) : t("noContacts")));
}

// ---- settings -------------------------------------------------------------------------------

function renderSettings() {
  const linked = stateOf(snap) === "linked";
  const acct = snap.account;
  $("settings-account").hidden = !acct;
  if (acct) {
    paintAvatar($("settings-avatar"), acct.handle, acct.handle);
    $("account-handle").textContent = `@${acct.handle}`;
    $("account-device").textContent = t("accountDevice", acct.deviceName || snap.deviceName || "", acct.deviceId);
  }
  const name = snap.deviceName || "";
  $("device-name").textContent = name;
  $("device-name").hidden = !linked;
  $("device-name-form").hidden = linked;
  const input = $("device-name-input");
  if (document.activeElement !== input && !input.dataset.dirty) input.value = name;
  $("device-name-row").classList.toggle("editable", !linked);

  $("notifications").checked = !!snap.notifications;
  $("logout-area").hidden = !linked;
  $("logout").hidden = ui.logoutConfirm;
  $("logout-confirm-box").hidden = !ui.logoutConfirm;
}

/** Server, fingerprint and versions: shown in settings (and kept current everywhere). */
function renderSettingsFacts() {
  $("server").textContent = snap.server || "–";
  $("server-fingerprint").textContent = snap.serverFingerprint ? fingerprintLines(snap.serverFingerprint) : t("fingerprintUnknown");
  $("core-version").textContent = snap.version ?? "–";
  $("protocol-version").textContent = snap.protocolVersion != null ? String(snap.protocolVersion) : "–";
}

function openSettings() {
  ui.settings = true;
  ui.logoutConfirm = false;
  render();
}

// ---- toast ------------------------------------------------------------------------------------

let toastTimer = 0;
function toast(text, isError = false) {
  const el = $("toast");
  el.textContent = text;
  el.classList.toggle("error", isError);
  el.setAttribute("role", isError ? "alert" : "status");
  el.hidden = false;
  el.classList.remove("out");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.classList.add("out");
    toastTimer = setTimeout(() => (el.hidden = true), 200);
  }, isError ? 6000 : 2600);
}

// ---- navigation and keyboard -----------------------------------------------------------------------

/** Esc and the back button: one step up. */
function goBack() {
  if (ui.menu) return closeMenu(true);
  if (ui.screen === "chat") return closeChat();
  if (ui.screen === "newchat") {
    ui.newChat = false;
    return render();
  }
  if (ui.screen === "settings") {
    ui.settings = false;
    ui.logoutConfirm = false;
    render();
    return;
  }
  if (ui.screen === "list" && ui.query) {
    ui.query = "";
    $("search").value = "";
    renderList();
  }
}

function focusSearch() {
  if (!snap || stateOf(snap) !== "linked") return;
  if (ui.chat) closeChat();
  ui.newChat = false;
  ui.settings = false;
  render();
  $("search").focus();
  $("search").select();
}

/** ArrowUp/Down through the visible rows of the list on screen; from the search box into the list. */
function moveInList(delta) {
  const scope = ui.screen === "newchat" ? $("screen-newchat") : $("screen-list");
  const rows = [...scope.querySelectorAll(".chat-open")].filter((b) => b.offsetParent !== null);
  if (!rows.length) return false;
  const search = ui.screen === "newchat" ? $("new-chat-input") : $("search");
  const at = rows.indexOf(document.activeElement?.closest?.(".chat-row")?.querySelector(".chat-open"));
  if (document.activeElement === search || at === -1) {
    if (delta > 0) rows[0].focus();
    else return false;
  } else if (at + delta < 0) search.focus();
  else rows[Math.min(rows.length - 1, at + delta)].focus();
  document.activeElement.scrollIntoView({ block: "nearest" });
  return true;
}

function onKeydown(e) {
  const mod = e.ctrlKey || e.metaKey;
  if (mod && !e.altKey && e.key.toLowerCase() === "k") {
    e.preventDefault();
    focusSearch();
    return;
  }
  if (ui.menu) {
    const items = [...$("row-menu").querySelectorAll(".menu-item")];
    const at = items.indexOf(document.activeElement);
    if (e.key === "Escape") {
      e.preventDefault();
      closeMenu(true);
    } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      items[(at + (e.key === "ArrowDown" ? 1 : -1) + items.length) % items.length].focus();
    } else if (e.key === "Home" || e.key === "End") {
      e.preventDefault();
      items[e.key === "Home" ? 0 : items.length - 1].focus();
    } else if (e.key === "Tab") closeMenu(false);
    return;
  }
  if (e.key === "Escape") {
    if (ui.screen === "list" && !ui.query) return;
    e.preventDefault();
    goBack();
    return;
  }
  if ((ui.screen === "list" || ui.screen === "newchat") && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
    const target = e.target;
    const inRows = target.closest?.(".chat-row") || target.id === "search" || target.id === "new-chat-input";
    if (inRows && moveInList(e.key === "ArrowDown" ? 1 : -1)) e.preventDefault();
  }
}

// ---- wiring ------------------------------------------------------------------------------------------

function wire() {
  document.addEventListener("keydown", onKeydown);
  $("back").addEventListener("click", goBack);
  $("settings").addEventListener("click", openSettings);
  $("new-chat").addEventListener("click", openNewChat);
  $("chat-more").addEventListener("click", (e) => {
    e.stopPropagation();
    toggleMenu(ui.chat, $("chat-more"));
  });
  $("banner-close").addEventListener("click", () => {
    ui.dismissedError = snap?.error ?? null;
    renderBanner();
  });

  // first run
  $("setup-form").addEventListener("submit", submitServer);
  $("server-input").addEventListener("input", () => {
    ui.setupTouched = true;
    if (ui.check && !ui.check.ok) {
      ui.check = null;
      renderSetup();
    }
  });

  // linking
  const fresh = () => post({ kind: "startLink", withCode: !!snap?.link?.pairingCode });
  $("new-code").addEventListener("click", fresh);
  $("new-code-2").addEventListener("click", fresh);
  $("with-code").addEventListener("click", () => post({ kind: "startLink", withCode: true }));
  $("with-qr").addEventListener("click", () => post({ kind: "startLink", withCode: false }));

  // list
  $("search").addEventListener("input", () => {
    ui.query = $("search").value;
    renderList();
  });
  $("search").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.isComposing) {
      e.preventDefault();
      const first = $("chat-list").querySelector(".chat-open") ?? $("list-empty").querySelector("button");
      first?.click();
    }
  });
  $("archived-toggle").addEventListener("click", () => {
    ui.archivedOpen = !ui.archivedOpen;
    renderList();
  });
  for (const item of $("row-menu").querySelectorAll(".menu-item")) {
    item.addEventListener("click", () => onMenuAction(item.dataset.action));
  }
  document.addEventListener("click", (e) => {
    if (ui.menu && !$("row-menu").contains(e.target)) closeMenu(false);
  });
  $("list-scroll").addEventListener("scroll", () => closeMenu(false), { passive: true });

  // chat
  $("composer-form").addEventListener("submit", sendComposer);
  $("composer").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && !e.altKey) {
      e.preventDefault();
      sendComposer();
    }
  });
  $("composer").addEventListener("input", () => {
    if (ui.chat) ui.drafts.set(ui.chat, $("composer").value);
    autosize();
  });
  $("share-tab").addEventListener("click", () => ui.chat && shareTab(ui.chat));

  // new chat
  $("new-chat-input").addEventListener("input", () => {
    ui.contactQuery = $("new-chat-input").value;
    renderNewChat();
  });
  $("new-chat-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.isComposing) {
      e.preventDefault();
      $("contact-list").querySelector(".chat-open")?.click();
    }
  });

  // settings
  $("notifications").addEventListener("change", () => post({ kind: "setNotifications", on: $("notifications").checked }));
  $("device-name-input").addEventListener("input", () => ($("device-name-input").dataset.dirty = "1"));
  $("device-name-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("device-name-input").value.trim();
    if (!name) return;
    delete $("device-name-input").dataset.dirty;
    post({ kind: "setDeviceName", name });
    toast(t("deviceNameSaved"));
  });
  $("logout").addEventListener("click", () => {
    ui.logoutConfirm = true;
    renderSettings();
    $("logout-cancel").focus();
  });
  $("logout-cancel").addEventListener("click", () => {
    ui.logoutConfirm = false;
    renderSettings();
    $("logout").focus();
  });
  $("logout-confirm").addEventListener("click", () => {
    ui.logoutConfirm = false;
    post({ kind: "logout" });
    toast(t("loggingOut"));
    renderSettings();
  });

  setInterval(tickCountdown, 1000);
}

// ---- start ----------------------------------------------------------------------------------------------

localise();
wire();

// Paint at once from the cached snapshot, then follow the worker.
chrome.storage.session
  .get("snapshot")
  .then(({ snapshot }) => {
    if (snapshot && !snap) onSnapshot(snapshot);
  })
  .catch(() => {});

import("../background/config.js")
  .then((m) => {
    defaultServer = m.DEFAULT_SERVER ?? "";
    if (ui.screen === "setup") renderSetup();
  })
  .catch(() => {});

// Opened for a purpose: a notification's chat, or a share to place.
chrome.storage.session
  .get(["openChat", "pendingShare"])
  .then(({ openChat: chat, pendingShare }) => {
    const fromHash = new URLSearchParams(location.hash.slice(1)).get("chat");
    const target = chat || fromHash;
    if (pendingShare) {
      ui.pendingShare = pendingShare;
      toast(t("choosePendingShare", pendingShare.title || pendingShare.url));
    }
    if (target) {
      chrome.storage.session.remove("openChat").catch(() => {});
      const open = () => (snap?.state === "linked" ? openChat(target) : setTimeout(open, 100));
      open();
    }
  })
  .catch(() => {});

connect();
post({ kind: "snapshot" });
