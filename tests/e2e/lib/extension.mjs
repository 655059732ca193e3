// Launches the built extension (dist/chrome) in headless Chromium with
// Playwright, and helps tests talk to its worker and popup.

import { chromium } from "playwright-core";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

export const EXTENSION = path.resolve(process.env.TETHER_EXTENSION ?? "dist/chrome");
export const ARTIFACTS = path.resolve(process.env.TETHER_ARTIFACTS ?? "test-artifacts");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** Flags for a headless Chromium on this machine (no sandbox as root; no background network, which the closed network refuses). */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  // A fake microphone (a beep) that needs no prompt: the voice recorder's tests.
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
];

/**
 * Starts Chromium with the extension loaded. Returns the context, the
 * extension id, its service worker, every console message and page error
 * seen (worker and pages), and `close()`. With `toolbar`, the browser
 * lets CDP press the extension's toolbar button (`clickToolbarButton`).
 * @param {{ toolbar?: boolean }} [options]
 */
export async function launch({ toolbar = false } = {}) {
  const profile = await mkdtemp(path.join(tmpdir(), "tether-e2e-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreDefaultArgs: ["--disable-extensions"],
    args: [
      `--disable-extensions-except=${EXTENSION}`,
      `--load-extension=${EXTENSION}`,
      ...CHROMIUM_ARGS,
      ...(toolbar ? ["--enable-unsafe-extension-debugging"] : []),
    ],
  });
  const logs = [];
  context.on("console", (msg) => logs.push({ type: msg.type(), text: msg.text(), url: msg.location()?.url ?? "" }));
  context.on("weberror", (err) => logs.push({ type: "pageerror", text: String(err.error()), url: "" }));
  const worker = context.serviceWorkers()[0] ?? (await context.waitForEvent("serviceworker", { timeout: 15000 }));
  const id = new URL(worker.url()).host;
  return {
    context,
    worker,
    id,
    logs,
    popupUrl: `chrome-extension://${id}/popup/popup.html`,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Opens the popup page (the same document the toolbar button shows) at its real width. */
export async function openPopup(ext, { colorScheme = "light" } = {}) {
  const page = await ext.context.newPage();
  await page.emulateMedia({ colorScheme });
  await page.setViewportSize({ width: 380, height: 480 });
  page.on("pageerror", (err) => ext.logs.push({ type: "pageerror", text: String(err), url: page.url() }));
  await page.goto(ext.popupUrl);
  return page;
}

/** Writes a screenshot into the test artifacts folder; returns its path. */
export async function screenshot(page, name) {
  await mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * Presses the extension's toolbar button on the tab showing `page`
 * (CDP `Extensions.triggerAction`; the extension must be launched with
 * `toolbar`). As a person's click does, it gives the extension activeTab
 * on that tab: the same grant a click in the context menu gives, which
 * Playwright cannot open. The tab is found by its address, which must be
 * unique among the open tabs.
 */
export async function clickToolbarButton(ext, page) {
  const cdp = await ext.context.browser().newBrowserCDPSession();
  try {
    const { targetInfos } = await cdp.send("Target.getTargets", { filter: [{ type: "tab" }] });
    const tabs = targetInfos.filter((t) => t.type === "tab" && t.url === page.url());
    if (tabs.length !== 1) throw new Error(`${tabs.length} tabs show ${page.url()}`);
    await cdp.send("Extensions.triggerAction", { id: ext.id, targetId: tabs[0].targetId });
  } finally {
    await cdp.detach();
  }
}

/** Stops every service worker through CDP, the way Chrome does after 30 s idle. */
export async function stopWorkers(ext, page) {
  const cdp = await ext.context.newCDPSession(page);
  await cdp.send("ServiceWorker.enable");
  await cdp.send("ServiceWorker.stopAllWorkers");
  await cdp.detach();
}

/** Console errors and uncaught errors seen so far. */
export function errors(ext) {
  return ext.logs.filter((l) => l.type === "error" || l.type === "pageerror");
}

/**
 * Answers "Linked to @handle. Is this you?" with yes, after checking that
 * the popup asks it (and shows no chats before the answer).
 * @param {import("playwright-core").Page} page
 * @param {string} handle
 */
export async function confirmAccount(page, handle) {
  await page.waitForSelector("#confirm-yes", { state: "visible", timeout: 15000 });
  const title = await page.textContent("#confirm-title");
  if (title !== `Linked to @${handle}. Is this you?`) throw new Error(`unexpected confirmation: ${title}`);
  if ((await page.locator("#chat-list [data-chat]").count()) !== 0) throw new Error("chats shown before the answer");
  await page.click("#confirm-yes");
}

/**
 * Links the extension to a CLI primary: first run (the server address,
 * checked), a screenshot of the popup's QR read by `tether link`, then
 * "Linked to @handle. Is this you?" answered yes. Returns the popup, linked.
 * @param {{ popupUrl: string, context: any, logs: any[] }} ext
 * @param {{ url: string }} server
 * @param {{ run: (args: string[]) => Promise<{ stdout: string }> }} primary
 * @param {string} handle the primary's account
 * @param {string} shotName name of the QR screenshot in the test artifacts
 */
export async function linkByQr(ext, server, primary, handle, shotName) {
  const page = await openPopup(ext);
  await page.waitForSelector("#server-input", { state: "visible" });
  await page.fill("#server-input", server.url);
  await page.click("#check-server");
  await page.waitForSelector("#qr svg", { state: "visible", timeout: 15000 });
  const qr = await screenshot(page, shotName);
  const r = await primary.run(["link", qr, "--yes"]);
  if (!/Linked Chrome on Linux as device \d+/.test(r.stdout)) throw new Error(`not linked: ${r.stdout}`);
  await confirmAccount(page, handle);
  await page.waitForSelector('#view[data-state="linked"]', { timeout: 15000 });
  return page;
}

/**
 * The extension's message history as stored in IndexedDB (src/store.rs):
 * the records of namespace `ns` (`messages`, `words`), key → value.
 * @param {{ worker: import("playwright-core").Worker }} ext
 * @param {string} ns
 * @returns {Promise<Record<string, string>>}
 */
export async function historyRecords(ext, ns) {
  return ext.worker.evaluate(readHistory, ns);
}

/**
 * Runs in an extension page or the worker: the records of namespace `ns`
 * of the history in IndexedDB, key → value.
 * @param {string} ns
 * @returns {Promise<Record<string, string>>}
 */
export function readHistory(ns) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open("tether-history", 1);
    open.onupgradeneeded = () => open.result.createObjectStore("history");
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const tx = open.result.transaction("history", "readonly");
      const range = IDBKeyRange.bound(`${ns}/`, `${ns}/\uffff`);
      const keys = tx.objectStore("history").getAllKeys(range);
      const values = tx.objectStore("history").getAll(range);
      tx.oncomplete = () => {
        /** @type {Record<string, string>} */
        const out = {};
        keys.result.forEach((k, i) => (out[String(k).slice(ns.length + 1)] = String(values.result[i])));
        open.result.close();
        resolve(out);
      };
      tx.onerror = () => reject(tx.error);
    };
  });
}

/**
 * Records every "Send to Tether" item the worker creates as it rebuilds
 * the context menu, in `globalThis.menuItems` ({ id, title }[]).
 * @param {{ worker: import("playwright-core").Worker }} ext
 */
export async function spyOnMenus(ext) {
  await ext.worker.evaluate(() => {
    const menus = chrome.contextMenus;
    const create = menus.create.bind(menus);
    const removeAll = menus.removeAll.bind(menus);
    /** @type {any} */ (globalThis).menuItems = [];
    menus.create = (props, cb) => {
      /** @type {any} */ (globalThis).menuItems.push({ id: props.id, title: props.title });
      return create(props, cb);
    };
    menus.removeAll = (cb) => {
      /** @type {any} */ (globalThis).menuItems = [];
      return removeAll(cb);
    };
  });
}
