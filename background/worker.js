// @ts-check
// Tether's MV3 service worker: the top-level chrome.* listeners, nothing
// else. Each is registered synchronously (a stopped worker is woken by the
// event it listens for) and hands its event to the core once it is up
// (core.js). The core (src/, in WebAssembly) holds the session and the
// socket and decides; host.js applies what it asks for.
//
// Modules: core.js (boot), host.js (what the core asks of chrome.*),
// router.js (the popup's Port), pages.js (the recorder's and the
// image permission window's requests), imageshare.js, preview.js (a shared
// page's preview), actions.js (menu, command and notification clicks), badge.js, menus.js, notifications.js, storage.js, ports.js,
// platform.js, log.js, config.js.

import { onCommand, onMenuClick, onNotificationClick } from "./actions.js";
import { ALARM, bootTimes, whenReady } from "./core.js";
import { badgeTimes } from "./badge.js";
import { onConnect } from "./router.js";
import { onPageMessage } from "./pages.js";

chrome.runtime.onConnect.addListener(onConnect);
chrome.runtime.onMessage.addListener(onPageMessage);
chrome.runtime.onInstalled.addListener(() => whenReady((core) => core.wake()));
chrome.runtime.onStartup.addListener(() => whenReady((core) => core.wake()));
chrome.alarms.onAlarm.addListener((alarm) => alarm.name === ALARM && whenReady((core) => core.wake()));
chrome.contextMenus.onClicked.addListener((info, tab) => whenReady((core) => onMenuClick(core, info, tab)));
chrome.notifications.onClicked.addListener((id) => whenReady(() => onNotificationClick(id)));
chrome.commands.onCommand.addListener((command, tab) => whenReady((core) => onCommand(core, command, tab)));

// The same handlers, reachable from DevTools and the end-to-end tests
// (Playwright cannot open a native context menu or click a notification).
/** @type {any} */ (globalThis).tether = {
  /** @param {chrome.contextMenus.OnClickData} info @param {chrome.tabs.Tab | undefined} tab */
  menuClick: (info, tab) => whenReady((core) => onMenuClick(core, info, tab)),
  /** @param {string} command @param {chrome.tabs.Tab | undefined} tab */
  command: (command, tab) => whenReady((core) => onCommand(core, command, tab)),
  /** @param {string} id */
  notificationClick: (id) => whenReady(() => onNotificationClick(id)),
  /** This worker life's milestones (ms since it started). */
  boot: () => ({ ...bootTimes, badge: badgeTimes.first, connected: badgeTimes.connected, shown: badgeTimes.shown }),
  /** @param {string} query @param {string | null} chat */
  search: (query, chat) => whenReady((core) => core.search(query, chat, 50)),
};
