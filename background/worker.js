// Tether's MV3 service worker: thin glue between chrome.* and the Rust core.
//
// Every listener is registered synchronously at the top level (a stopped
// worker is woken by the event it listens for); the core starts as a
// promise that handlers await. No protocol logic lives here: the core
// (src/, the tether-client engine) decides; this file moves bytes between
// the core and the WebSocket, chrome.storage, the badge, menus and
// notifications, and the popup's Port.

import init, { Core } from "../wasm/tether_core.js";
import { DEFAULT_SERVER } from "./config.js";

const SNAPSHOT_KEY = "snapshot";
const SETTINGS_KEY = "settings";
const ALARM = "tether-tick";
const MENU_ROOT = "tether-send";
const MENU_CHOOSE = "tether-choose";
const MENU_CONTEXTS = ["page", "link", "selection", "image"];

// ---- listeners (top level, synchronous) -------------------------------------

chrome.runtime.onConnect.addListener(onConnect);
chrome.runtime.onInstalled.addListener(() => whenReady(wake));
chrome.runtime.onStartup.addListener(() => whenReady(wake));
chrome.alarms.onAlarm.addListener((alarm) => alarm.name === ALARM && whenReady(wake));
chrome.contextMenus.onClicked.addListener((info, tab) => whenReady(() => onMenuClick(info, tab)));
chrome.notifications.onClicked.addListener((id) => whenReady(() => onNotificationClick(id)));
chrome.commands.onCommand.addListener((command, tab) => whenReady(() => onCommand(command, tab)));
// The same handlers, reachable from DevTools and the end-to-end tests
// (Playwright cannot open a native context menu).
globalThis.tether = {
  menuClick: (info, tab) => whenReady(() => onMenuClick(info, tab)),
  command: (command, tab) => whenReady(() => onCommand(command, tab)),
  notificationClick: (id) => whenReady(() => onNotificationClick(id)),
};

// ---- state (rebuilt from storage on every start) ----------------------------

/** @type {Core} */
let core;
let settings;
/** @type {WebSocket | null} */
let ws = null;
let connection = "offline";
let lastError = null;
let backoff = 0;
let reconnectTimer = null;
let timeoutTimer = null;
/** Popup ports, and the chat each has open. */
const ports = new Map();

const ready = boot();

function whenReady(fn) {
  return ready.then(fn).catch(report);
}

function report(err) {
  // Names the failure, never a key or message content.
  console.warn("tether:", err && err.message ? err.message : String(err));
}

/** Engine calls and their persistence run one at a time. */
let chain = Promise.resolve();
function serial(fn) {
  chain = chain.then(fn).catch(report);
  return chain;
}

function platform() {
  const os = navigator.userAgentData?.platform || navigator.platform || "";
  const osName = /mac/i.test(os) ? "macOS" : /win/i.test(os) ? "Windows" : /cros/i.test(os) ? "ChromeOS" : /android/i.test(os) ? "Android" : "Linux";
  const browser = /firefox/i.test(navigator.userAgent) ? "Firefox" : /edg\//i.test(navigator.userAgent) ? "Edge" : "Chrome";
  return { id: `${browser.toLowerCase()}/${osName.toLowerCase()}`, name: `${browser} on ${osName}` };
}

async function boot() {
  await init();
  const all = await chrome.storage.local.get(null);
  const p = platform();
  settings = { server: DEFAULT_SERVER, configured: false, notifications: true, deviceName: p.name, ...(all[SETTINGS_KEY] || {}) };
  core = Core.open(p.id, settings.deviceName, JSON.stringify(all));
  await persist();
  if (!(await chrome.alarms.get(ALARM))) chrome.alarms.create(ALARM, { periodInMinutes: 0.5 });
  await wake();
}

/** On every wake: badge and menus first, then the connection drains the queue. */
async function wake() {
  updateBadge();
  await publish();
  rebuildMenus();
  if (core.wantsConnection()) connect();
}

// ---- persistence, then transmit ---------------------------------------------

async function persist() {
  const w = JSON.parse(core.takeWrites());
  if (w.clear) {
    const keys = Object.keys(await chrome.storage.local.get(null)).filter((k) => k.startsWith("kv/"));
    if (keys.length) await chrome.storage.local.remove(keys);
  }
  if (w.remove.length) await chrome.storage.local.remove(w.remove);
  if (Object.keys(w.set).length) await chrome.storage.local.set(w.set);
}

/** After every input: persist, send, react to events, arm the timer. */
async function pump() {
  await persist();
  for (let t = core.pollTransmit(); t !== undefined; t = core.pollTransmit()) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(t);
  }
  const events = [];
  for (let e = core.pollEvent(); e !== undefined; e = core.pollEvent()) events.push(JSON.parse(e));
  for (const e of events) await onEvent(e);
  await persist();
  const close = core.pollClose();
  if (close !== undefined && ws) ws.close(1000, "client");
  armTimeout();
  if (events.length) {
    updateBadge();
    await publish();
  }
}

function armTimeout() {
  clearTimeout(timeoutTimer);
  const at = core.pollTimeout();
  if (at === undefined) return;
  timeoutTimer = setTimeout(() => serial(() => {
    core.handleTimeout(Date.now());
    return pump();
  }), Math.max(0, at - Date.now()));
}

// ---- connection ---------------------------------------------------------------

function wsUrl(server) {
  return server.replace(/\/+$/, "").replace(/^http(s?):\/\//, "ws$1://") + "/v1/ws";
}

function connect() {
  if (ws && (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN)) return;
  clearTimeout(reconnectTimer);
  const server = core.serverUrl() || settings.server;
  connection = "connecting";
  updateBadge();
  const socket = new WebSocket(wsUrl(server));
  socket.binaryType = "arraybuffer";
  ws = socket;
  socket.onopen = () => serial(() => {
    core.handleConnected(Date.now());
    return pump();
  });
  socket.onmessage = (m) => serial(() => {
    core.handleMessage(new Uint8Array(m.data), Date.now());
    return pump();
  });
  socket.onclose = (ev) => {
    if (ws === socket) ws = null;
    serial(async () => {
      connection = "offline";
      core.handleDisconnected(Date.now(), ev.reason || "closed");
      await pump();
      updateBadge();
      await publish();
      scheduleReconnect();
    });
  };
}

/** Reconnects with exponential backoff and jitter (1 s … 30 s). */
function scheduleReconnect() {
  if (!core.wantsConnection()) return;
  const delay = Math.min(30_000, 1000 * 2 ** backoff) * (0.5 + Math.random() / 2);
  backoff = Math.min(backoff + 1, 5);
  clearTimeout(reconnectTimer);
  reconnectTimer = setTimeout(connect, delay);
}

// ---- events from the core ---------------------------------------------------

async function onEvent(e) {
  switch (e.kind) {
    case "connected":
      connection = "connected";
      backoff = 0;
      lastError = null;
      break;
    case "disconnected":
      connection = "offline";
      break;
    case "message":
      await notify(e.message);
      rebuildMenus();
      pushChat(e.message.chat);
      break;
    case "messageStatus":
      pushChat(e.chat);
      break;
    case "chatChanged":
      await clearReadNotifications(e.chat);
      pushChat(e.chat);
      break;
    case "linked":
      rebuildMenus();
      break;
    case "unlinked":
      await chrome.notifications.getAll().then((all) => Promise.all(Object.keys(all).map((id) => chrome.notifications.clear(id))));
      rebuildMenus();
      // Back to the QR at once (fresh keys), with the reason on show.
      core.startLink(settings.server, false, Date.now());
      setTimeout(connect, 0);
      break;
    case "error":
    case "safetyWarning":
      lastError = e.message || e.warning;
      break;
  }
}

async function notify(m) {
  if (m.fromMe || !settings.notifications || !core.shouldNotify(m.chat, m.id)) return;
  // The id is the message's: a second create (after a worker restart) replaces, never duplicates.
  await chrome.notifications.create(`msg:${m.chat}:${m.id}`, {
    type: "basic",
    iconUrl: chrome.runtime.getURL("icons/icon-128.png"),
    title: nameOf(m.chat),
    message: m.preview,
    priority: 1,
  });
}

async function clearReadNotifications(chat) {
  const snap = JSON.parse(core.snapshot());
  const c = snap.chats.find((x) => x.handle === chat);
  if (c && c.unread === 0) {
    const all = await chrome.notifications.getAll();
    await Promise.all(Object.keys(all).filter((id) => id.startsWith(`msg:${chat}:`)).map((id) => chrome.notifications.clear(id)));
  }
}

function nameOf(handle) {
  const snap = JSON.parse(core.snapshot());
  return snap.contacts.find((c) => c.handle === handle)?.name || handle;
}

// ---- badge ------------------------------------------------------------------------

function updateBadge() {
  if (!core) return;
  const unread = core.unread();
  let text = unread > 0 ? (unread > 99 ? "99+" : String(unread)) : "";
  let color = "#d93025";
  let title = unread ? chrome.i18n.getMessage("badgeUnread", [String(unread)]) : chrome.i18n.getMessage("actionTitle");
  if (!core.isLinked()) {
    text = "?";
    color = "#b4540a";
    title = chrome.i18n.getMessage("badgeNotLinked");
  } else if (connection !== "connected") {
    text = text || "off";
    color = "#6b7280";
    title = chrome.i18n.getMessage("badgeOffline");
  }
  chrome.action.setBadgeText({ text });
  chrome.action.setBadgeBackgroundColor({ color });
  chrome.action.setTitle({ title: title || "Tether" });
}

// ---- context menu -----------------------------------------------------------------

let menuKey = "";
function rebuildMenus() {
  const chats = core.isLinked() ? JSON.parse(core.recentChats(5)) : [];
  const key = JSON.stringify([core.isLinked(), chats]);
  if (key === menuKey) return;
  menuKey = key;
  chrome.contextMenus.removeAll(() => {
    if (!core.isLinked()) return;
    chrome.contextMenus.create({ id: MENU_ROOT, title: chrome.i18n.getMessage("menuSendTo"), contexts: MENU_CONTEXTS });
    for (const c of chats) {
      chrome.contextMenus.create({ id: `chat:${c.handle}`, parentId: MENU_ROOT, title: c.name, contexts: MENU_CONTEXTS });
    }
    chrome.contextMenus.create({ id: MENU_CHOOSE, parentId: MENU_ROOT, title: chrome.i18n.getMessage("menuChoose"), contexts: MENU_CONTEXTS });
  });
}

/** What a right-click shares: image → its URL; link → the link; selection → the quoted text with the page; page → URL + title. */
function shareFromClick(info, tab) {
  if (info.mediaType === "image" && info.srcUrl) return { url: info.srcUrl, title: tab?.title || "", selection: "" };
  if (info.linkUrl) return { url: info.linkUrl, title: info.selectionText || "", selection: "" };
  if (info.selectionText) return { url: info.pageUrl || tab?.url || "", title: tab?.title || "", selection: info.selectionText };
  return { url: info.pageUrl || tab?.url || "", title: tab?.title || "", selection: "" };
}

async function onMenuClick(info, tab) {
  const share = shareFromClick(info, tab);
  if (info.menuItemId === MENU_CHOOSE) {
    await chrome.storage.session.set({ pendingShare: share });
    return openPopup();
  }
  const id = String(info.menuItemId);
  if (!id.startsWith("chat:")) return;
  await serial(() => {
    core.sendLink(id.slice(5), share.url, share.title, share.selection, Date.now());
    return pump();
  });
}

async function openPopup(hash = "") {
  try {
    await chrome.action.openPopup();
  } catch {
    await chrome.windows.create({ url: chrome.runtime.getURL(`popup/popup.html${hash}`), type: "popup", width: 400, height: 600 });
  }
}

async function onNotificationClick(id) {
  const [, chat] = id.split(":");
  chrome.notifications.clear(id);
  await chrome.storage.session.set({ openChat: chat });
  await openPopup(`#chat=${encodeURIComponent(chat)}`);
}

async function onCommand(command, tab) {
  if (command !== "send-page-to-last-chat") return;
  const [last] = JSON.parse(core.recentChats(1));
  const active = tab || (await chrome.tabs.query({ active: true, lastFocusedWindow: true }))[0];
  if (!last || !active?.url) return;
  await serial(() => {
    core.sendLink(last.handle, active.url, active.title || "", "", Date.now());
    return pump();
  });
}

// ---- popup ------------------------------------------------------------------------

function snapshot() {
  const s = JSON.parse(core.snapshot());
  return {
    ...s,
    server: core.serverUrl() || settings.server,
    state: s.state === "unlinked" && !settings.configured && !s.unlinkedReason ? "setup" : s.state,
    connection,
    notifications: settings.notifications,
    deviceName: settings.deviceName,
    error: lastError,
  };
}

async function publish() {
  const snap = snapshot();
  await chrome.storage.session.set({ [SNAPSHOT_KEY]: snap });
  for (const port of ports.keys()) port.postMessage({ kind: "snapshot", snapshot: snap });
}

function pushChat(chat) {
  for (const [port, open] of ports) {
    if (open === chat) port.postMessage({ kind: "chat", chat, messages: JSON.parse(core.messages(chat)) });
  }
}

/** An open popup of an unlinked browser shows a QR: start linking if no code is on show. */
async function ensureLinkCode() {
  const s = JSON.parse(core.snapshot());
  if (!settings.configured || core.isLinked() || s.state === "linking" || (s.link && !s.link.exhausted)) return;
  await serial(async () => {
    core.startLink(settings.server, false, Date.now());
    await pump();
  });
  connect();
}

function onConnect(port) {
  if (port.name !== "popup" || port.sender?.id !== chrome.runtime.id) return;
  whenReady(ensureLinkCode);
  ports.set(port, null);
  port.onDisconnect.addListener(() => ports.delete(port));
  port.onMessage.addListener((msg) => whenReady(() => route(port, msg)).catch((err) => port.postMessage({ kind: "error", message: String(err?.message ?? err) })));
}

async function saveSettings() {
  await chrome.storage.local.set({ [SETTINGS_KEY]: settings });
}

/** One router, switching on the message kind. */
async function route(port, msg) {
  const now = Date.now();
  const run = (fn) => serial(async () => {
    try {
      fn();
    } catch (err) {
      lastError = String(err?.message ?? err);
      port.postMessage({ kind: "error", message: lastError });
    }
    await pump();
    await publish();
  });
  switch (msg?.kind) {
    case "snapshot":
      port.postMessage({ kind: "snapshot", snapshot: snapshot() });
      break;
    case "setServer": {
      const url = String(msg.url || "").trim().replace(/\/+$/, "");
      try {
        const resp = await fetch(`${url}/healthz`, { cache: "no-store" });
        const body = await resp.json();
        if (!resp.ok || body.status !== "ok") throw new Error(body.status || resp.statusText);
        settings.server = url;
        settings.configured = true;
        await saveSettings();
        const fp = (body.fingerprint || "").slice(0, 32).match(/.{4}/g)?.join("-") || null;
        port.postMessage({ kind: "serverChecked", ok: true, fingerprint: fp, error: null });
        await ensureLinkCode();
        await publish();
      } catch (err) {
        port.postMessage({ kind: "serverChecked", ok: false, fingerprint: null, error: chrome.i18n.getMessage("serverUnreachable", [url]) || String(err) });
      }
      break;
    }
    case "startLink":
      await run(() => core.startLink(settings.server, !!msg.withCode, now));
      connect();
      break;
    case "openChat":
      ports.set(port, msg.chat);
      port.postMessage({ kind: "chat", chat: msg.chat, messages: JSON.parse(core.messages(msg.chat)) });
      await run(() => core.markRead(msg.chat, now));
      break;
    case "sharePending": {
      const { pendingShare: share } = await chrome.storage.session.get("pendingShare");
      await chrome.storage.session.remove("pendingShare");
      if (share) await run(() => core.sendLink(msg.chat, share.url, share.title, share.selection, now));
      break;
    }
    case "closeChat":
      ports.set(port, null);
      break;
    case "send":
      await run(() => core.sendText(msg.chat, msg.text, now));
      break;
    case "shareTab": {
      const [tab] = await chrome.tabs.query({ active: true, lastFocusedWindow: true });
      if (!tab?.url) throw new Error(chrome.i18n.getMessage("noTabToShare") || "No page to share");
      await run(() => core.sendLink(msg.chat, tab.url, tab.title || "", "", now));
      break;
    }
    case "setFlags":
      await run(() => core.setFlags(msg.chat, !!msg.muted, !!msg.archived, !!msg.pinned, now));
      rebuildMenus();
      break;
    case "newChat":
      await run(() => core.addContact(msg.handle, msg.name || "", now));
      break;
    case "setNotifications":
      settings.notifications = !!msg.on;
      await saveSettings();
      await publish();
      break;
    case "setDeviceName":
      if (!core.isLinked() && msg.name) {
        settings.deviceName = String(msg.name).slice(0, 64);
        await saveSettings();
        const all = await chrome.storage.local.get(null);
        core = Core.open(platform().id, settings.deviceName, JSON.stringify(all));
        await publish();
      }
      break;
    case "logout":
      await run(() => core.logout(now));
      break;
    default:
      port.postMessage({ kind: "error", message: `unknown request: ${String(msg?.kind)}` });
  }
}
