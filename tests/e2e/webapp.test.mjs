// The phone web app end to end: tether-server serves it; a second Chromium
// at a phone's size opens it, registers, and links the extension (loaded
// in the first Chromium) by pointing its camera — a video made from the
// pixels of the popup's QR — at the popup, or by the pairing code typed
// in. No test hooks in the linking path: the QR goes from the popup's
// screen through the camera to the web app's wasm decoder.

import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { confirmAccount, launch, openPopup, screenshot, ARTIFACTS } from "./lib/extension.mjs";
import { cliUser, startServer, until } from "./lib/tether.mjs";
import { cameraFrom, launchPhone, scratch } from "./lib/phone.mjs";
import { mkdir } from "node:fs/promises";
import path from "node:path";

let server, bob, ext, phone, tmp;

beforeEach(async () => {
  server = await startServer();
  bob = await cliUser();
  await bob.run(["register", "bob", "--server", server.url]);
  tmp = await scratch();
});

afterEach(async () => {
  await phone?.close();
  await ext?.close();
  await server?.stop();
  await bob?.cleanup();
  await tmp?.cleanup();
  phone = ext = undefined;
});

/** The web app's screen, as it names it. */
const screenOf = (page) => page.evaluate(() => document.body.dataset.screen);
const onScreen = (page, name, timeout = 15000) => page.waitForSelector(`body[data-screen="${name}"]`, { timeout });

/**
 * Registers `handle` on the web app, writes down the recovery phrase and
 * confirms the three words it asks for. Returns the 24 words.
 * @param {import("playwright-core").Page} page
 */
async function registerOnPhone(page, handle, name, shots = "") {
  await page.goto(server.url);
  await onScreen(page, "welcome");
  if (shots) await phoneShot(page, `app-welcome-${shots}`);
  await page.click("#welcome-register");
  await onScreen(page, "register");
  await page.fill("#register-handle", handle);
  await page.fill("#register-name", name);
  if (shots) await phoneShot(page, `app-register-${shots}`);
  await page.click("#register-submit");
  await onScreen(page, "phrase");
  const words = await page.$$eval("#phrase-words li", (lis) =>
    lis.sort((a, b) => Number(a.dataset.index) - Number(b.dataset.index)).map((li) => (li.querySelector(".word")?.textContent ?? li.textContent ?? "").replace(/^\s*\d+\.?\s*/, "").trim()),
  );
  assert.equal(words.length, 24, "24 words");
  for (const w of words) assert.match(w, /^[a-z]{3,8}$/, `a BIP-39 word: ${w}`);
  if (shots) await phoneShot(page, `app-phrase-${shots}`);
  await page.click("#phrase-next");
  await onScreen(page, "phrase-confirm");
  for (const k of [1, 2, 3]) {
    const label = await page.textContent(`#phrase-confirm-label-${k}`);
    const n = Number(label?.match(/\d+/)?.[0]);
    assert.ok(n >= 1 && n <= 24, `asks for a word by its number: ${label}`);
    await page.fill(`#phrase-confirm-${k}`, words[n - 1]);
  }
  if (shots) await phoneShot(page, `app-phrase-confirm-${shots}`);
  await page.click("#phrase-confirm-submit");
  await onScreen(page, "list");
  return words;
}

/** Starts a chat with `handle` on the phone and sends `text` from it. */
async function sendFromPhone(page, handle, text) {
  await page.click("#new-chat");
  await page.fill("#new-chat-input", handle);
  await page.click(`#contact-list [data-handle="${handle}"] .chat-open`);
  await page.waitForSelector("#composer", { state: "visible" });
  await page.fill("#composer", text);
  await page.press("#composer", "Enter");
  await page.waitForSelector(`#messages :text("${text}")`, { timeout: 10000 });
}

/** Back to the phone's chat list. */
async function phoneChats(page) {
  if ((await screenOf(page)) === "chat") await page.click("#back");
  else await page.click("#nav-chats");
  await onScreen(page, "list");
}

/** A screenshot of the phone at its size, into the test artifacts. */
async function phoneShot(page, name) {
  await mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/** The popup on its first run, pointed at the server, showing its QR (or its code with `code`). */
async function popupShowing({ code = false } = {}) {
  ext = await launch();
  const popup = await openPopup(ext);
  await popup.waitForSelector("#server-input", { state: "visible" });
  await popup.fill("#server-input", server.url);
  await popup.click("#check-server");
  await popup.waitForSelector("#qr svg", { state: "visible", timeout: 15000 });
  if (code) {
    await popup.click("#with-code");
    await popup.waitForSelector("#pairing-code:not(:empty)", { timeout: 15000 });
  }
  return popup;
}

/** A chat with bob on the phone, with history on both sides. */
async function historyWithBob(page) {
  await bob.run(["contacts", "add", "alice", "--name", "Alice"]);
  await sendFromPhone(page, "bob", "hello bob, from my phone");
  await until(async () => (await bob.run(["read", "alice"])).stdout.includes("hello bob, from my phone"), "bob gets the phone's message", 20000);
  await bob.run(["send", "alice", "history from before the link"]);
  await page.waitForSelector(`#messages :text("history from before the link")`, { timeout: 15000 });
  await phoneChats(page);
}

/**
 * The phone's back button: one step up from a chat, and the app stays put
 * when it draws the chat list twice before its own history step lands (a
 * second step back would have left the app).
 */
async function backButtonStaysInApp(page) {
  const url = page.url();
  await page.click('#chat-list [data-chat="bob"]');
  await onScreen(page, "chat");
  await page.goBack();
  await onScreen(page, "list");
  assert.equal(page.url(), url);
  await page.click('#chat-list [data-chat="bob"]');
  await onScreen(page, "chat");
  await page.evaluate(() => {
    document.getElementById("back")?.click();
    document.getElementById("nav-chats")?.click();
  });
  await onScreen(page, "list");
  // Our own history step lands on its popstate; after it, still here.
  await page.waitForFunction(() => !history.state?.tetherDeep);
  await page.waitForTimeout(300);
  assert.equal(page.url(), url);
  assert.equal(await screenOf(page), "list");
}

/** The popup, linked, lists bob's chat with the history the phone holds. */
async function popupHasHistory(popup) {
  await confirmAccount(popup, "alice");
  const row = await popup.waitForSelector('#chat-list [data-chat="bob"]', { timeout: 20000 });
  assert.match(await row.textContent(), /history from before the link/);
}

test("link by pointing the phone's camera at the popup's QR; the phone logs the browser out", async () => {
  const popup = await popupShowing();
  const qr = path.join(tmp.dir, "qr.png");
  await popup.locator("#qr").screenshot({ path: qr });
  phone = await launchPhone({ camera: await cameraFrom(qr, tmp.file("camera.y4m")) });
  const page = await phone.context.newPage();
  await registerOnPhone(page, "alice", "Alice", "light");
  await historyWithBob(page);

  const started = Date.now();
  await page.click("#link-device");
  await onScreen(page, "link");
  // The camera (the popup's QR, through Chromium's fake capture) is decoded
  // in wasm; the payload's details ask for the person's yes.
  await onScreen(page, "link-confirm", 20000);
  assert.equal(await page.textContent("#link-confirm-title"), "Link Chrome on Linux?");
  assert.match(await page.textContent("#link-confirm-platform"), /Chrome.*Linux|chrome\/linux/i);
  await phoneShot(page, "app-link-confirm-light");
  await page.click("#link-confirm-yes");
  await popupHasHistory(popup);
  const tookMs = Date.now() - started;
  console.log(`# from "Link a device" to the popup's chat list: ${tookMs} ms (2 messages of history)`);
  await until(async () => (await screenOf(page)) === "link-progress" && (await page.isVisible("#link-done")), "the phone says the browser is linked");
  await phoneShot(page, "app-link-done-light");
  await page.click("#link-done");

  // Linked devices: the browser is listed; log it out from the phone.
  await page.click("#open-devices");
  await onScreen(page, "devices");
  const row = await page.waitForSelector("#devices-list [data-device]:not([data-device='0']):has(.logout)", { timeout: 10000 });
  assert.match(await row.textContent(), /Chrome/);
  assert.match(await page.textContent("#app-devices"), /14 days/);
  assert.match(await page.textContent("#app-devices"), /30 days/);
  await phoneShot(page, "app-devices-light");
  await row.$eval(".logout", (b) => /** @type {HTMLElement} */ (b).click());
  await page.click("#devices-list .logout-confirm");
  // The popup is back at its QR, saying why.
  await popup.waitForSelector("#unlinked-reason:not([hidden])", { timeout: 20000 });
  await popup.waitForSelector("#qr svg", { state: "visible", timeout: 15000 });
  assert.match(await popup.textContent("#unlinked-reason-text"), /\S/);
  await screenshot(popup, "app-logged-out-popup");
  await until(async () => (await page.$$("#devices-list [data-device]")).length === 1, "the phone lists only itself");
});

test("link by typing the popup's pairing code into the phone", async () => {
  const popup = await popupShowing({ code: true });
  const code = (await popup.textContent("#pairing-code"))?.trim() ?? "";
  assert.match(code, /^[A-Z2-9]{4}-[A-Z2-9]{4}$/);
  phone = await launchPhone();
  const page = await phone.context.newPage();
  await registerOnPhone(page, "alice", "Alice");
  await historyWithBob(page);
  await backButtonStaysInApp(page);

  await page.click("#link-device");
  await onScreen(page, "link");
  await page.click("#enter-code");
  await onScreen(page, "link-code");
  await page.fill("#code-input", code.toLowerCase().replace("-", " "));
  await phoneShot(page, "app-link-code-light");
  await page.click("#code-submit");
  await onScreen(page, "link-confirm", 20000);
  // Both screens show the same six digits.
  const digits = (await page.textContent("#link-confirmation"))?.replace(/\D/g, "");
  assert.match(digits ?? "", /^\d{6}$/);
  await popup.waitForSelector("#pairing-match:not([hidden])", { timeout: 10000 });
  assert.equal((await popup.textContent("#pairing-match"))?.replace(/\D/g, ""), digits);
  await page.click("#link-confirm-yes");
  await popupHasHistory(popup);
});

test("a phone that lost its storage restores the account from the recovery phrase; the contact sees no key change", async () => {
  phone = await launchPhone();
  let page = await phone.context.newPage();
  const words = await registerOnPhone(page, "alice", "Alice");
  await historyWithBob(page);

  // The browser forgets everything of the web app (IndexedDB, caches, the service worker).
  const cdp = await phone.context.newCDPSession(page);
  await cdp.send("Storage.clearDataForOrigin", { origin: new URL(server.url).origin, storageTypes: "all" });
  await cdp.detach();
  await page.close();
  page = await phone.context.newPage();
  await page.goto(server.url);
  await onScreen(page, "welcome");
  await page.click("#welcome-restore");
  await onScreen(page, "restore");
  await page.fill("#restore-handle", "alice");
  await page.fill("#restore-phrase", words.join(" "));
  await phoneShot(page, "app-restore-light");
  await page.click("#restore-submit");
  await onScreen(page, "list", 20000);

  // Bob's client accepts the restored account's new device under the same key.
  await sendFromPhone(page, "bob", "I am back");
  await until(async () => (await bob.run(["read", "alice"])).stdout.includes("I am back"), "bob gets the restored phone's message", 20000);
  const contacts = await bob.run(["contacts"]);
  const line = contacts.stdout.split("\n").find((l) => l.includes("alice")) ?? "";
  assert.ok(line, `bob still has alice: ${contacts.stdout}`);
  assert.doesNotMatch(line, /⚠/, "no key-change warning on bob's side");
  await bob.run(["send", "alice", "welcome back"]);
  await page.waitForSelector(`#messages :text("welcome back")`, { timeout: 15000 });
});

test("the web app is installable (no installability errors) and opens offline after one visit", async () => {
  phone = await launchPhone();
  const page = await phone.context.newPage();
  await page.goto(server.url);
  await onScreen(page, "welcome");
  // The service worker took the shell.
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
  const cdp = await phone.context.newCDPSession(page);
  const { installabilityErrors } = await cdp.send("Page.getInstallabilityErrors");
  assert.deepEqual(installabilityErrors, [], "Chromium's installability check");
  const manifest = await cdp.send("Page.getAppManifest");
  assert.deepEqual(manifest.errors, [], "the manifest parses");
  await cdp.detach();

  await phone.context.setOffline(true);
  await page.reload();
  await onScreen(page, "welcome");
  assert.equal(await page.isVisible("#welcome-register"), true, "the shell works offline");
});
