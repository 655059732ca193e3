// Two drivers behind one interface, so that a journey (journeys.test.mjs)
// is written once and run in both browsers:
//
// - Chromium: Playwright over CDP, the extension from dist/chrome, its
//   background a service worker.
// - Firefox: Debian's firefox-esr driven by geckodriver over WebDriver
//   (classic for input, BiDi for viewports and screenshots), dist/firefox
//   installed as a temporary add-on with a fixed extension UUID, its
//   background an event page.
//
// `TETHER_BROWSER` (chromium | firefox) picks the one under test.
//
// The interface (an `Ext`):
//   name, deviceName, platformId   "Firefox", "Firefox on Linux", "firefox/linux"
//   openPopup({ colorScheme })      the popup document in a tab at its real size
//   openTab(url)                    a web page in a new tab, brought to front
//   probe(fn, arg)                  fn(arg) in an extension page that never
//                                   talks to the background (so never wakes it):
//                                   badge, notifications, storage, IndexedDB
//   sendFromMenu(page, what)        "Send to Tether" → a chat from the page's
//                                   context menu (Firefox: the real menu)
//   command(page, name)             a keyboard command on that page
//   background(method, ...args)     globalThis.tether[method](...args) in the
//                                   background (which wakes it)
//   suspend()                       the background stopped the browser's own way
//   waitForPage(fn)                 the page a window the extension opens shows
//   problems()                      failures the extension reported or threw
//   close()
// and a `Page`: fill, click, press, waitFor, text, evaluate, count,
// isHidden, colorScheme, screenshot, url, title, close.

import { chromium } from "playwright-core";
import { Builder, By, Key } from "selenium-webdriver";
import firefox from "selenium-webdriver/firefox.js";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { closeSync, openSync } from "node:fs";
import { tmpdir, homedir } from "node:os";
import path from "node:path";
import { ARTIFACTS, CHROMIUM_ARGS, EXTENSION } from "./extension.mjs";
import { until } from "./tether.mjs";

export const BROWSER = (process.env.TETHER_BROWSER ?? "chromium").toLowerCase();
/** The Firefox build (xtask/src/build.rs); Chromium's is EXTENSION (TETHER_EXTENSION, dist/chrome). */
const FIREFOX_EXTENSION = path.resolve(process.env.TETHER_FIREFOX_EXTENSION ?? "dist/firefox");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const FIREFOX = process.env.FIREFOX ?? "/usr/bin/firefox-esr";
const GECKODRIVER = process.env.GECKODRIVER ?? path.join(homedir(), ".cargo/bin/geckodriver");

/** The popup's size in the toolbar (popup.css). */
const POPUP = { width: 380, height: 480 };

/** The extension page the probe runs in: the image-permission page, which sends nothing until one of its buttons is pressed. */
const PROBE_PAGE = "popup/grant.html";

/**
 * Launches the browser under test with the built extension.
 * @param {{ idleSeconds?: number }} [options] Firefox: the event page's idle timeout
 */
export function launch(options = {}) {
  if (BROWSER === "firefox") return launchFirefox(options);
  if (BROWSER === "chromium") return launchChromium();
  throw new Error(`TETHER_BROWSER must be chromium or firefox, not ${BROWSER}`);
}

async function saveShot(name, png) {
  await mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await writeFile(file, png);
  return file;
}

// ------------------------------------------------------------- Chromium

async function launchChromium() {
  const dir = EXTENSION;
  const profile = await mkdtemp(path.join(tmpdir(), "tether-e2e-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreDefaultArgs: ["--disable-extensions"],
    args: [`--disable-extensions-except=${dir}`, `--load-extension=${dir}`, ...CHROMIUM_ARGS],
  });
  const logs = [];
  context.on("console", (msg) => logs.push({ type: msg.type(), text: msg.text(), url: msg.location()?.url ?? "" }));
  context.on("weberror", (err) => logs.push({ type: "pageerror", text: String(err.error()), url: "" }));
  const worker = context.serviceWorkers()[0] ?? (await context.waitForEvent("serviceworker", { timeout: 15000 }));
  const id = new URL(worker.url()).host;
  const base = `chrome-extension://${id}/`;
  const probe = await context.newPage();
  await probe.goto(base + PROBE_PAGE);
  /**
   * The live worker. A stopped one is woken the way a menu click would
   * wake it: by an event (here a message from the probe, which the worker
   * ignores).
   */
  const liveWorker = async () => {
    const running = context.serviceWorkers()[0];
    if (running) return running;
    const started = context.waitForEvent("serviceworker", { timeout: 15000 });
    await probe.evaluate(() => chrome.runtime.sendMessage({ kind: "wake" }).catch(() => {}));
    return started;
  };

  /**
   * `p` brought to front, as the tab Chromium passes to a menu click or a
   * command (the gesture grants activeTab, so url and title are there).
   * @param {import("playwright-core").Page} p
   */
  const activeTab = async (p) => {
    await p.bringToFront();
    const id = await probe.evaluate(async () => (await chrome.tabs.query({ active: true, lastFocusedWindow: true }))[0]?.id);
    return { id, url: p.url(), title: await p.title() };
  };

  /** @param {import("playwright-core").Page} page */
  const wrap = (page) => ({
    fill: (sel, value) => page.fill(sel, value),
    click: (sel) => page.click(sel),
    press: (sel, key) => page.press(sel, key),
    waitFor: async (sel, { state = "visible", timeout = 15000 } = {}) => void (await page.waitForSelector(sel, { state, timeout })),
    text: (sel) => page.textContent(sel),
    evaluate: (fn, arg) => page.evaluate(`(${fn})(${JSON.stringify(arg)})`),
    count: (sel) => page.locator(sel).count(),
    isHidden: (sel) => page.isHidden(sel),
    colorScheme: (scheme) => page.emulateMedia({ colorScheme: scheme }),
    screenshot: async (name) => saveShot(name, await page.screenshot({ fullPage: true })),
    url: () => page.url(),
    title: () => page.title(),
    close: () => page.close(),
    raw: page,
  });

  return {
    name: "Chromium",
    /** What the extension reported as failing so far: its own reports (`tether:`), console errors, uncaught errors. */
    async problems() {
      return logs
        .filter((l) => l.type === "error" || l.type === "pageerror" || (l.type === "warning" && /^tether:/.test(l.text)))
        .map((l) => `${l.type}: ${l.text} (${l.url})`);
    },
    deviceName: "Chrome on Linux",
    platformId: "chrome/linux",
    logs,
    async openPopup({ colorScheme = "light" } = {}) {
      const page = await context.newPage();
      await page.emulateMedia({ colorScheme });
      await page.setViewportSize(POPUP);
      page.on("pageerror", (err) => logs.push({ type: "pageerror", text: String(err), url: page.url() }));
      await page.goto(base + "popup/popup.html");
      return wrap(page);
    },
    async openTab(url) {
      const page = await context.newPage();
      await page.goto(url);
      await page.bringToFront();
      return wrap(page);
    },
    probe: (fn, arg) => probe.evaluate(`(${fn})(${JSON.stringify(arg)})`),
    /**
     * Playwright cannot open Chromium's native context menu: the click's
     * data is built from the element, as Chromium passes it, and handed to
     * the worker's menu handler.
     */
    async sendFromMenu(page, { target = null, select = null, chat }) {
      const p = page.raw;
      const info = await p.evaluate(
        ([target, select]) => {
          const el = target ? document.querySelector(target) : null;
          /** @type {Record<string, unknown>} */
          const info = { editable: false, pageUrl: location.href, frameUrl: location.href };
          if (select) info.selectionText = document.querySelector(select)?.textContent ?? "";
          if (el instanceof HTMLAnchorElement) info.linkUrl = el.href;
          if (el instanceof HTMLImageElement) Object.assign(info, { mediaType: "image", srcUrl: el.src });
          return info;
        },
        [target, select],
      );
      const tab = await activeTab(p);
      await (await liveWorker()).evaluate(([i, t]) => globalThis.tether.menuClick(i, t), [{ menuItemId: `chat:${chat}`, ...info }, tab]);
    },
    /** The keyboard command's handler, with the page's tab (Playwright's keys never reach Chromium's own shortcuts). */
    async command(page, name) {
      const tab = await activeTab(page.raw);
      await (await liveWorker()).evaluate(([c, t]) => globalThis.tether.command(c, t), [name, tab]);
    },
    background: async (method, ...args) => (await liveWorker()).evaluate(([m, a]) => globalThis.tether[m](...a), [method, args]),
    async suspend() {
      const cdp = await context.newCDPSession(probe);
      await cdp.send("ServiceWorker.enable");
      await cdp.send("ServiceWorker.stopAllWorkers");
      await cdp.detach();
    },
    async waitForPage(fn) {
      const [page] = await Promise.all([context.waitForEvent("page"), fn()]);
      await page.waitForLoadState();
      return wrap(page);
    },
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

// -------------------------------------------------------------- Firefox

/** The context menu's root item (_locales/en/messages.json, menuSendTo). */
const ROOT_TITLE = "Send to Tether";
/**
 * A manifest key ("Ctrl+Shift+U") as Firefox writes it on a XUL <key>
 * (key "U", modifiers "accel,shift"; Ctrl is accel on Linux).
 * @param {string} shortcut
 */
function xulKey(shortcut) {
  const parts = shortcut.split("+");
  const key = /** @type {string} */ (parts.pop()).toUpperCase();
  const names = { Ctrl: "accel", Alt: "alt", Shift: "shift", MacCtrl: "control", Command: "accel" };
  return { key, modifiers: parts.map((p) => names[p] ?? p.toLowerCase()).sort().join(",") };
}

/** The gecko id of dist/firefox (xtask/src/build.rs) and the UUID its pages get here. */
const GECKO_ID = "tether@tether.chat";
const UUID = "7e1f0d3c-5a2b-4c8d-9e6f-0a1b2c3d4e5f";
/** The keyset Firefox adds to each browser window for the add-on's commands. */
const KEYSET = `ext-keyset-id-${GECKO_ID.replace(/[^a-z0-9_-]/gi, "_")}`;

/**
 * @param {{ idleSeconds?: number }} options
 */
async function launchFirefox({ idleSeconds = 30 }) {
  const opts = new firefox.Options()
    .setBinary(FIREFOX)
    .addArguments("-headless")
    // Pages of the add-on live at moz-extension://UUID/.
    .setPreference("extensions.webextensions.uuids", JSON.stringify({ [GECKO_ID]: UUID }))
    // The event page is suspended after this long without events (Firefox's default: 30 s).
    .setPreference("extensions.background.idle.timeout", idleSeconds * 1000)
    // No first-run pages or network chatter on this closed network.
    .setPreference("browser.shell.checkDefaultBrowser", false)
    .setPreference("datareporting.policy.dataSubmissionEnabled", false)
    .setPreference("app.update.disabledForTesting", true)
    // The camera/microphone prompts would block a headless run.
    .setPreference("media.navigator.streams.fake", true)
    .setPreference("media.navigator.permission.disabled", true)
    // Notifications in Firefox's own alert windows: headless, the system's would never show.
    .setPreference("alerts.useSystemBackend", false)
    // Console messages of every page and of the background go to stdout, read into `logs`.
    .setPreference("devtools.console.stdout.chrome", true)
    .setPreference("devtools.console.stdout.content", true);
  opts.enableBidi();
  // --allow-system-access: Firefox 153 lets WebDriver open moz-extension:// pages only with it.
  // geckodriver's output and Firefox's (the console, above) into a file.
  const logDir = await mkdtemp(path.join(tmpdir(), "tether-firefox-"));
  const logFile = path.join(logDir, "firefox.log");
  const logFd = openSync(logFile, "w");
  const service = new firefox.ServiceBuilder(GECKODRIVER).addArguments("--allow-system-access").setStdio(["ignore", logFd, logFd]);
  const driver = await new Builder().forBrowser("firefox").setFirefoxOptions(opts).setFirefoxService(service).build();
  const bidi = await driver.getBidi();
  const base = `moz-extension://${UUID}/`;
  try {
    await driver.installAddon(FIREFOX_EXTENSION, true);
  } catch (err) {
    await driver.quit();
    throw err;
  }
  const logs = [];

  /** WebDriver classic acts on one window at a time: every command first selects its own. */
  let current = await driver.getWindowHandle();
  const focus = async (handle) => {
    if (handle !== current) {
      await driver.switchTo().window(handle);
      current = handle;
    }
  };
  const send = async (method, params) => {
    const r = await bidi.send({ method, params });
    if (r.type === "error") throw new Error(`${method}: ${r.error}: ${r.message}`);
    return r.result;
  };
  const newTab = async (url) => {
    await focus(current);
    await driver.switchTo().newWindow("tab");
    current = await driver.getWindowHandle();
    if (url) await driver.get(url);
    return current;
  };
  const script = (handle, fn, arg) =>
    focus(handle).then(() =>
      driver.executeAsyncScript(
        `const done = arguments[arguments.length - 1];
         Promise.resolve().then(() => (${fn})(arguments[0])).then(
           (v) => done({ ok: JSON.stringify(v === undefined ? null : v) }),
           (e) => done({ err: String(e && e.stack || e) }));`,
        arg ?? null,
      ).then((r) => {
        if (r.err) throw new Error(r.err);
        return JSON.parse(r.ok);
      }),
    );

  // The probe lives in the first tab.
  const probeHandle = current;
  await driver.get(base + PROBE_PAGE);

  /** @param {string} handle */
  const wrap = (handle) => {
    const find = async (sel) => {
      await focus(handle);
      return driver.findElement(By.css(sel));
    };
    const visible = async (sel) => {
      await focus(handle);
      const els = await driver.findElements(By.css(sel));
      for (const el of els) if (await el.isDisplayed().catch(() => false)) return true;
      return false;
    };
    return {
      /**
       * Cleared, then typed key by key. WebDriver's Element Clear fires no
       * input event, so a page that prefills the field until it is touched
       * (the popup's server address) may refill it between the clear and
       * the first key: the value is checked, and cleared and typed again.
       */
      async fill(sel, value) {
        await until(async () => {
          const el = await find(sel);
          await el.clear();
          await el.sendKeys(value);
          return (await driver.executeScript("return arguments[0].value", el)) === value;
        }, `${sel} to hold what was typed`, 15000);
      },
      // As Playwright does, a click or a key waits for the element and tries
      // again if the page redrew it in between (a stale element).
      click: (sel) =>
        until(async () => {
          if (!(await visible(sel))) return false;
          await (await find(sel)).click();
          return true;
        }, `${sel} to click`, 15000),
      press: (sel, key) =>
        until(async () => {
          await (await find(sel)).sendKeys(key === "Enter" ? Key.ENTER : key);
          return true;
        }, `${sel} to take ${key}`, 15000),
      async waitFor(sel, { state = "visible", timeout = 15000 } = {}) {
        await until(async () => {
          if (state === "visible") return visible(sel);
          if (state === "hidden") return !(await visible(sel));
          await focus(handle);
          const n = (await driver.findElements(By.css(sel))).length;
          return state === "attached" ? n > 0 : n === 0;
        }, `${sel} ${state}`, timeout);
      },
      text: (sel) => script(handle, (s) => document.querySelector(s)?.textContent ?? null, sel),
      evaluate: (fn, arg) => script(handle, fn, arg),
      count: async (sel) => {
        await focus(handle);
        return (await driver.findElements(By.css(sel))).length;
      },
      isHidden: async (sel) => !(await visible(sel)),
      // The preference reaches an open page a moment later: wait until
      // the page sees the scheme, and for two frames painted with it.
      async colorScheme(scheme) {
        await colorScheme(scheme);
        const painted = (dark) =>
          new Promise((resolve) =>
            requestAnimationFrame(() =>
              requestAnimationFrame(() => resolve(matchMedia("(prefers-color-scheme: dark)").matches === dark)),
            ),
          );
        await until(() => script(handle, painted, scheme === "dark"), `the page in ${scheme}`, 5000);
      },
      async screenshot(name) {
        const r = await send("browsingContext.captureScreenshot", { context: handle, origin: "document" });
        return saveShot(name, Buffer.from(r.data, "base64"));
      },
      url: () => focus(handle).then(() => driver.getCurrentUrl()),
      title: () => focus(handle).then(() => driver.getTitle()),
      async close() {
        await focus(handle);
        await driver.close();
        current = probeHandle;
        await driver.switchTo().window(probeHandle);
      },
      raw: { driver, handle },
    };
  };

  /**
   * Runs `fn` with the WebDriver in Firefox's own (chrome) scope.
   * @template T @param {() => Promise<T>} fn @returns {Promise<T>}
   */
  const chrome = async (fn) => {
    await driver.setContext("chrome");
    try {
      return await fn();
    } finally {
      await driver.setContext("content");
    }
  };

  /**
   * prefers-color-scheme for every page: Firefox's content-theme
   * preference (0 dark, 1 light), set in the browser's own (chrome) scope.
   * @param {"light" | "dark"} scheme
   */
  const colorScheme = (scheme) =>
    chrome(() =>
      driver.executeScript(
        `Services.prefs.setIntPref("layout.css.prefers-color-scheme.content-override", arguments[0]);`,
        scheme === "dark" ? 0 : 1,
      ),
    );

  /** The event page's state as Firefox's add-on manager sees it: "running", "suspending", "stopped"... */
  const backgroundState = () =>
    chrome(() => driver.executeScript(`return WebExtensionPolicy.getByID(arguments[0])?.extension?.backgroundState ?? null;`, GECKO_ID));

  return {
    name: "Firefox",
    deviceName: "Firefox on Linux",
    platformId: "firefox/linux",
    logs,
    backgroundState,
    async openPopup({ colorScheme: scheme = "light" } = {}) {
      await colorScheme(scheme);
      const handle = await newTab();
      await send("browsingContext.setViewport", { context: handle, viewport: POPUP });
      await driver.get(base + "popup/popup.html");
      return wrap(handle);
    },
    async openTab(url) {
      return wrap(await newTab(url));
    },
    probe: (fn, arg) => script(probeHandle, fn, arg),
    /**
     * A real right-click on the page (on `target`, after selecting
     * `select`'s text), then a real click on "Send to Tether" → the chat's
     * item in Firefox's own context menu. Returns the titles under
     * "Send to Tether", as the menu showed them.
     */
    async sendFromMenu(page, { target = null, select = null, chatTitle }) {
      const { handle } = page.raw;
      await focus(handle);
      if (select) {
        await driver.executeScript(
          `const r = document.createRange(); r.selectNodeContents(document.querySelector(arguments[0]));
           getSelection().removeAllRanges(); getSelection().addRange(r);`,
          select,
        );
      }
      const el = await driver.findElement(By.css(target ?? select ?? "body"));
      await driver.actions().contextClick(el).perform();
      return chrome(async () => {
        const titles = await until(
          () =>
            driver.executeScript(`
              const menu = Services.wm.getMostRecentWindow("navigator:browser").document.getElementById("contentAreaContextMenu");
              const root = [...menu.querySelectorAll("menu")].find((m) => m.getAttribute("label") === arguments[0]);
              return menu.state === "open" && root ? [...root.querySelectorAll("menuitem")].map((i) => i.getAttribute("label")) : null;`,
              ROOT_TITLE,
            ),
          "Firefox's context menu with Send to Tether",
        );
        const clicked = await driver.executeScript(
          `const menu = Services.wm.getMostRecentWindow("navigator:browser").document.getElementById("contentAreaContextMenu");
           const root = [...menu.querySelectorAll("menu")].find((m) => m.getAttribute("label") === arguments[0]);
           const item = [...root.querySelectorAll("menuitem")].find((i) => i.getAttribute("label") === arguments[1]);
           if (!item) return false;
           item.doCommand();
           menu.hidePopup();
           return true;`,
          ROOT_TITLE,
          chatTitle,
        );
        if (!clicked) throw new Error(`no "${chatTitle}" under ${ROOT_TITLE}: ${titles.join(", ")}`);
        return titles;
      });
    },
    /**
     * The keyboard command through the key Firefox registered for it in the
     * browser window (WebDriver's key presses reach the page, never the
     * window's shortcuts): the manifest's suggested key must be there, and
     * no built-in key of Firefox may take it first.
     */
    async command(page, name) {
      const manifest = JSON.parse(await readFile(path.join(FIREFOX_EXTENSION, "manifest.json"), "utf8"));
      const wanted = new Map(Object.entries(manifest.commands).map(([n, c]) => [n, xulKey(c.suggested_key.default)]));
      if (!wanted.has(name)) throw new Error(`the manifest has no command ${name}`);
      await focus(page.raw.handle);
      await chrome(async () => {
        const keys = await driver.executeScript(`
          const d = Services.wm.getMostRecentWindow("navigator:browser").document;
          return [...d.querySelectorAll("keyset key")].map((k) => ({
            ours: k.parentElement.id === arguments[0],
            key: (k.getAttribute("key") || "").toUpperCase(),
            modifiers: (k.getAttribute("modifiers") || "").split(/[ ,]+/).filter(Boolean).sort().join(","),
          }));`, KEYSET);
        for (const [n, k] of wanted) {
          if (!keys.some((x) => x.ours && x.key === k.key && x.modifiers === k.modifiers)) throw new Error(`Firefox registered no ${k.key}+${k.modifiers} for ${n}`);
          const clash = keys.find((x) => !x.ours && x.key === k.key && x.modifiers === k.modifiers);
          if (clash) throw new Error(`${n}: Firefox's own ${k.modifiers}+${k.key} shadows the extension's`);
        }
        const k = /** @type {{ key: string, modifiers: string }} */ (wanted.get(name));
        const done = await driver.executeScript(`
          const d = Services.wm.getMostRecentWindow("navigator:browser").document;
          const key = [...d.querySelectorAll("#" + arguments[0] + " key")].find((k) =>
            (k.getAttribute("key") || "").toUpperCase() === arguments[1] &&
            (k.getAttribute("modifiers") || "").split(/[ ,]+/).filter(Boolean).sort().join(",") === arguments[2]);
          if (!key) return false;
          key.doCommand();
          return true;`, KEYSET, k.key, k.modifiers);
        if (!done) throw new Error(`no key for ${name}`);
      });
    },
    background: (method, ...args) =>
      script(
        probeHandle,
        async ([m, a]) => {
          const bg = /** @type {any} */ (await browser.runtime.getBackgroundPage());
          // Structured copies: the background's own objects, not this page's.
          return bg.tether[m](...bg.structuredClone(a));
        },
        [method, args],
      ),
    /** Waits for Firefox to suspend the idle event page by itself (the idle timeout). */
    async suspend() {
      await until(async () => (await backgroundState()) === "stopped", "Firefox to suspend the idle background", (idleSeconds + 30) * 1000);
    },
    async waitForPage(fn) {
      const before = new Set(await driver.getAllWindowHandles());
      await fn();
      const handle = await until(async () => (await driver.getAllWindowHandles()).find((h) => !before.has(h)), "a new window", 15000);
      await focus(handle);
      await until(async () => (await driver.executeScript("return document.readyState")) === "complete", "the window to load", 15000);
      return wrap(handle);
    },
    /** What the extension reported as failing so far: its own reports (`tether:`), its pages' errors, uncaught errors. */
    async problems() {
      const text = await readFile(logFile, "utf8");
      return text.split("\n").filter((l) => /^console\.(warn|error): "(tether|popup)[: ]|^JavaScript error: moz-extension:/.test(l));
    },
    async close() {
      await driver.quit();
      closeSync(logFd);
      await rm(logDir, { recursive: true, force: true });
    },
  };
}
