// The extension's journeys, written once and run in each browser
// (lib/browsers.mjs: TETHER_BROWSER=chromium, Playwright; =firefox,
// geckodriver): the built extension, a real tether-server, and the real
// `tether` CLI as the primary (alice) and as a contact (bob).
//
// `cargo xtask test` runs this file twice, once per browser, and reports
// the two runs separately.

import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { BROWSER, launch } from "./lib/browsers.mjs";
import { readHistory } from "./lib/extension.mjs";
import { startServer, aliceAndBob, until } from "./lib/tether.mjs";

/** @type {any} */ let server;
/** @type {any} */ let alice;
/** @type {any} */ let bob;
/** @type {any} */ let ext;

const B = BROWSER === "firefox" ? "Firefox" : "Chromium";
/** A shot's name: the browser's, then what it shows. */
const shot = (what) => `${BROWSER}-${what}`;

async function start(options = {}) {
  server = await startServer();
  ({ alice, bob } = await aliceAndBob(server));
  // Alice has written to bob: his chat is her last chat (one-click targets
  // are the chats the user sent to, never just wrote to by others).
  await alice.run(["send", "bob", "hello bob"]);
  await bob.run(["send", "alice", "history from before the link"]);
  await alice.run(["read", "bob"]);
  ext = await launch(options);
}

beforeEach(() => {
  server = alice = bob = ext = undefined;
});

afterEach(async (t) => {
  const problems = (await ext?.problems()) ?? [];
  await ext?.close();
  await server?.stop();
  await alice?.cleanup();
  await bob?.cleanup();
  assert.deepEqual(problems, [], `${t.name}: the extension reported no failure`);
});

// What the extension shows and keeps, read from an extension page that never wakes the background.
const badge = () => ext.probe(() => chrome.action.getBadgeText({}));
const notifications = () => ext.probe(() => chrome.notifications.getAll());
const snapshot = async () => (await ext.probe(() => chrome.storage.session.get("snapshot"))).snapshot;
const storedKeys = () => ext.probe(async () => Object.keys(await chrome.storage.local.get(null)));
/** The history in IndexedDB (src/store.rs): records of namespace `ns`, key → value. */
const history = (ns) => ext.probe(readHistory, ns);

/**
 * First run and linking: the popup asks for the server and checks it,
 * shows a QR; the CLI reads a screenshot of it; the popup asks "Linked to
 * @alice. Is this you?" before showing any chat. Returns the linked popup.
 */
async function linkByQr() {
  const page = await ext.openPopup();
  await page.waitFor("#server-input");
  await page.fill("#server-input", server.url);
  await page.click("#check-server");
  await page.waitFor("#qr svg");
  const qr = await page.screenshot(shot("link-qr"));
  const r = await alice.run(["link", qr, "--yes"]);
  assert.match(r.stdout, new RegExp(`Linked ${ext.deviceName} as device \\d+`));
  await page.waitFor("#confirm-yes");
  assert.equal(await page.text("#confirm-title"), "Linked to @alice. Is this you?");
  assert.equal(await page.count("#chat-list [data-chat]"), 0, "no chats before the answer");
  await page.click("#confirm-yes");
  await page.waitFor('#view[data-state="linked"]', { state: "attached" });
  await page.waitFor('#chat-list [data-chat="bob"]');
  return page;
}

test(`${B}: first run and QR linking; the synced chat is listed and the primary lists this browser`, async () => {
  await start();
  const page = await linkByQr();
  assert.match(await page.text('#chat-list [data-chat="bob"]'), /history from before the link/);
  const devices = await alice.run(["devices"]);
  assert.match(devices.stdout, new RegExp(`${ext.platformId}\\s+${ext.deviceName}`));
  await until(async () => (await badge()) === "", "linked, connected, nothing unread: no badge");
});

test(`${B}: a message raises the badge and a notification; opening the chat clears both; a reply from the popup reaches the contact and the primary`, async () => {
  await start();
  const page = await linkByQr();
  await bob.run(["send", "alice", "are you there?"]);
  await until(async () => (await badge()) === "1", "badge 1");
  const shown = await until(async () => Object.keys(await notifications()).length === 1 && (await notifications()), "a notification");
  assert.match(Object.keys(shown)[0], /^msg:bob:/);
  await page.click('#chat-list [data-chat="bob"] .chat-open');
  await page.waitFor("#composer");
  await until(async () => (await badge()) === "", "badge cleared");
  await page.fill("#composer", `yes, from ${B}`);
  await page.press("#composer", "Enter");
  await until(async () => (await bob.run(["read", "alice"])).stdout.includes(`yes, from ${B}`), "bob receives the reply");
  const mine = await alice.run(["read", "bob"]);
  assert.match(mine.stdout, new RegExp(`alice: yes, from ${B} ✓`), "the primary shows it as sent by this account");
  await until(async () => Object.keys(await notifications()).length === 0, "reading clears the notification");
});

test(`${B}: clicking a notification opens its chat, which reads it`, async () => {
  await start();
  const first = await linkByQr();
  await first.close();
  await bob.run(["send", "alice", "tap to open"]);
  const [id] = Object.keys(await until(async () => Object.keys(await notifications()).length === 1 && (await notifications()), "a notification"));
  assert.equal(await badge(), "1");
  await ext.background("notificationClick", id);
  // The click opens the toolbar popup (or, where that cannot open, a popup
  // window) on that chat; opening the chat reads it, so the badge clears.
  await until(async () => (await badge()) === "", "the chat was opened and read");
  assert.equal((await snapshot()).chats.find((c) => c.handle === "bob").unread, 0);
  assert.equal(Object.keys(await notifications()).length, 0);
});

test(`${B}: the context menu sends page, link, selection and image; the keyboard command sends the page to the last chat`, async () => {
  await start();
  const popup = await linkByQr();
  await popup.close();
  // A test page on localhost with a link, some text and an image.
  await withPage(`<title>Test page</title><p id=t>Some words worth sending</p><a id=l href="https://example.org/linked">a link</a><img id=i src="/img.png">`, async (base) => {
    const page = await ext.openTab(`${base}/page.html`);
    assert.equal(await page.title(), "Test page");
    const bobItem = { chat: "bob", chatTitle: "Bob" };
    const offered = await ext.sendFromMenu(page, bobItem);
    if (offered) assert.deepEqual(offered, ["Bob", "Note to self", "Choose chat…"], "the menu offers the recent chat, the note to self, and Choose chat…");
    await ext.sendFromMenu(page, { ...bobItem, target: "#l" });
    await ext.sendFromMenu(page, { ...bobItem, select: "#t" });
    // An image from a site not allowed yet: a window asks; "Send the link" sends its URL.
    const ask = await ext.waitForPage(() => ext.sendFromMenu(page, { ...bobItem, target: "#i" }));
    await ask.click("#grant-link");
    const pageLine = `alice: Test page <${base}/page.html>`;
    const got = await until(async () => {
      const out = (await bob.run(["read", "alice"])).stdout;
      return out.includes("img.png") && out.includes("Some words") && out.includes("example.org/linked") && out;
    }, "bob receives all four");
    assert.match(got, new RegExp(`Test page <${base}/page.html>`), "page → URL + title");
    assert.match(got, /alice: a link <https:\/\/example.org\/linked>|alice: https:\/\/example.org\/linked/, "link → the link URL (with its text where the browser gives it)");
    assert.match(got, /“Some words worth sending”/, "selection → the quoted text");
    assert.match(got, new RegExp(`${base}/img.png`), "image → the image URL");
    // The keyboard command: the current page to the last chat.
    const pages = (out) => out.split("\n").filter((l) => l.endsWith(pageLine)).length;
    const before = pages(got);
    await ext.command(page, "send-page-to-last-chat");
    await until(async () => pages((await bob.run(["read", "alice"])).stdout) === before + 1, "the command sends the page to bob, the last chat");
  });
});

test(`${B}: log out from the popup: back to the QR, the primary no longer lists this browser, nothing is left here`, async () => {
  await start();
  const page = await linkByQr();
  await page.click("#settings");
  await page.click("#logout");
  await page.click("#logout-confirm");
  await page.waitFor("#qr svg");
  const devices = await alice.run(["devices"]);
  assert.doesNotMatch(devices.stdout, new RegExp(ext.platformId));
  const keys = await storedKeys();
  assert.ok(!keys.some((k) => /^kv\/(messages|chats|contacts)\//.test(k)), `no chats or messages left: ${keys}`);
  assert.deepEqual(Object.keys(await history("messages")), [], "no history left in IndexedDB");
  await until(async () => (await badge()) === "?", "the not-linked badge");
});

test(`${B}: the background is suspended while messages arrive and woken by its alarm: every message once, the badge right; suspended again, its context menu still sends`, { timeout: 180_000 }, async () => {
  // Firefox: the event page's idle timeout shortened from 30 s to 3 s.
  await start({ idleSeconds: 3 });
  const page = await linkByQr();
  await page.close();
  await ext.suspend();
  for (const n of [1, 2, 3]) await bob.run(["send", "alice", `while asleep ${n}`]);
  // Nothing wakes it but its alarm: the probe only reads, and moves the
  // extension's own alarm (every 30 s) to fire in 1 s, so the test waits
  // for the alarm, not for its period.
  const alarm = await ext.probe(async () => {
    const a = await chrome.alarms.get("tether-tick");
    if (a) await chrome.alarms.create("tether-tick", { when: Date.now() + 1000, periodInMinutes: a.periodInMinutes });
    return a ?? null;
  });
  assert.equal(alarm?.periodInMinutes, 0.5, "the background keeps a 30 s alarm");
  const asleep = Date.now();
  await until(async () => (await badge()) === "3", "badge 3 after the alarm woke the background", 60_000);
  console.log(`measure: ${B}: suspended background woken by its alarm (due 1 s after the messages were sent), badge 3 after ${Date.now() - asleep} ms`);
  const byText = {};
  await until(async () => {
    for (const k of Object.keys(byText)) delete byText[k];
    for (const value of Object.values(await history("messages"))) {
      const m = JSON.parse(value);
      if (m.chat === "bob" && !m.fromMe && m.body?.kind === "text") (byText[m.body.body] ??= []).push(m.id);
    }
    return [1, 2, 3].every((n) => byText[`while asleep ${n}`]);
  }, "the three messages stored");
  for (const n of [1, 2, 3]) assert.equal(byText[`while asleep ${n}`].length, 1, `message ${n} stored exactly once`);
  const shown = await until(async () => {
    const ids = Object.keys(await notifications());
    return ids.length >= 3 && ids;
  }, "three notifications");
  assert.deepEqual(
    shown.sort(),
    [1, 2, 3].map((n) => `msg:bob:${byText[`while asleep ${n}`][0]}`).sort(),
    "one notification per message",
  );
  assert.equal((await snapshot()).chats.find((c) => c.handle === "bob").unread, 3);
  // Opened, the chat shows each once.
  const popup = await ext.openPopup();
  await popup.click('#chat-list [data-chat="bob"] .chat-open');
  await until(async () => (await popup.text("#messages"))?.includes("while asleep 3"), "messages shown");
  const text = await popup.text("#messages");
  for (const n of [1, 2, 3]) assert.equal(text.split(`while asleep ${n}`).length - 1, 1, `message ${n} shown exactly once`);
  await until(async () => (await badge()) === "", "read: badge cleared");
  // Suspended again: a right-click still offers the chat, and the click wakes the background to send.
  await popup.close();
  await ext.suspend();
  await withPage("<title>After a nap</title><p>zzz</p>", async (base) => {
    const page = await ext.openTab(`${base}/nap.html`);
    await ext.sendFromMenu(page, { chat: "bob", chatTitle: "Bob" });
    await until(async () => (await bob.run(["read", "alice"])).stdout.includes(`After a nap <${base}/nap.html>`), "the menu of a suspended background sends");
  });
});

/**
 * Serves `html` (and an empty image at /img.png) on localhost while `fn(base)` runs.
 * @param {string} html @param {(base: string) => Promise<void>} fn
 */
async function withPage(html, fn) {
  const http = createServer((req, res) => {
    res.setHeader("content-type", req.url === "/img.png" ? "image/png" : "text/html");
    res.end(req.url === "/img.png" ? Buffer.alloc(0) : html);
  });
  await new Promise((r) => http.listen(0, "127.0.0.1", r));
  try {
    await fn(`http://127.0.0.1:${/** @type {any} */ (http.address()).port}`);
  } finally {
    http.close();
  }
}

/** Fails if anything on the page is wider than the popup (the document scrolls sideways). */
async function fitsThePopup(page, what) {
  const { scroll, width } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: innerWidth }));
  assert.ok(scroll <= width, `${what}: ${scroll} px wide in a ${width} px popup`);
}

test(`${B}: the popup in light and dark: first run, the chat list, a chat`, async () => {
  await start();
  for (const scheme of ["light", "dark"]) {
    const page = await ext.openPopup({ colorScheme: scheme });
    await page.waitFor("#server-input");
    const paint = await page.evaluate(() => performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null);
    console.log(`measure: ${B}: popup open to first contentful paint (${scheme}): ${paint === null ? "not reported" : `${Math.round(paint)} ms`}`);
    await fitsThePopup(page, "first run");
    await page.screenshot(shot(`popup-setup-${scheme}`));
    await page.close();
  }
  const page = await linkByQr();
  await bob.run(["send", "alice", "a second message, unread"]);
  await page.waitFor('#chat-list [data-chat="bob"] .unread');
  await fitsThePopup(page, "the chat list");
  for (const scheme of ["light", "dark"]) {
    await page.colorScheme(scheme);
    await page.screenshot(shot(`popup-chats-${scheme}`));
  }
  await page.click('#chat-list [data-chat="bob"] .chat-open');
  await page.waitFor("#composer");
  await until(async () => (await page.text("#messages"))?.includes("a second message, unread"), "the chat shows the message");
  await fitsThePopup(page, "a chat");
  for (const scheme of ["light", "dark"]) {
    await page.colorScheme(scheme);
    const file = await page.screenshot(shot(`popup-chat-${scheme}`));
    assert.ok((await readFile(file)).length > 5000, "a real screenshot was written");
  }
});
