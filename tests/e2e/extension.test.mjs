// The product end to end: the built extension (dist/chrome) in headless
// Chromium, a real tether-server, and the real `tether` CLI as the primary
// (alice) and as a contact (bob). The journeys both browsers share (first
// run, QR linking, badge and notifications and a click on one, sending, the context menu and
// the keyboard command, log out, a suspended background woken by its
// alarm, the popup's screenshots) are in journeys.test.mjs; these are the
// rest, in Chromium.

import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { confirmAccount, historyRecords, launch, linkByQr as linkTo, openPopup, stopWorkers } from "./lib/extension.mjs";
import { startServer, aliceAndBob, until } from "./lib/tether.mjs";

let server, alice, bob, ext;

beforeEach(async () => {
  server = await startServer();
  ({ alice, bob } = await aliceAndBob(server));
  // Alice has written to bob: his chat is her last chat (one-click targets
  // are the chats the user sent to, never just wrote to by others).
  await alice.run(["send", "bob", "hello bob"]);
  await bob.run(["send", "alice", "history from before the link"]);
  await alice.run(["read", "bob"]);
  ext = await launch();
});

afterEach(async () => {
  await ext?.close();
  await server?.stop();
  await alice?.cleanup();
  await bob?.cleanup();
});

const snapshotOf = async () => (await ext.worker.evaluate(() => chrome.storage.session.get("snapshot"))).snapshot;
const badge = () => ext.worker.evaluate(() => chrome.action.getBadgeText({}));
const notifications = () => ext.worker.evaluate(() => chrome.notifications.getAll());

/** First run: the popup asks for the server, checks it, then shows the QR. */
async function setUp(page) {
  await page.waitForSelector("#server-input", { state: "visible" });
  await page.fill("#server-input", server.url);
  await page.click("#check-server");
  await page.waitForSelector("#qr svg", { state: "visible", timeout: 15000 });
}

/** Links the extension by a QR read from a screenshot of the popup; the synced chat is listed. */
async function linkByQr() {
  const page = await linkTo(ext, server, alice, "alice", "link-qr-popup");
  await page.waitForSelector('#chat-list [data-chat="bob"]', { timeout: 15000 });
  return page;
}

test("2. link by pairing code", async () => {
  const page = await openPopup(ext);
  await setUp(page);
  await page.click("#with-code");
  const code = (await page.waitForSelector("#pairing-code:not(:empty)", { timeout: 15000 }).then((el) => el.textContent())).trim();
  assert.match(code, /^[A-Z2-9]{4}-[A-Z2-9]{4}$/);
  const r = await alice.run(["link", "--code", code, "--yes"]);
  assert.match(r.stdout, /Confirmation: \d{3} \d{3} \(the other device shows it too\)/);
  assert.match(r.stdout, /Linked Chrome on Linux/);
  await confirmAccount(page, "alice");
  await page.waitForSelector('#chat-list [data-chat="bob"]', { timeout: 15000 });
});

test("5. messages that arrive while the worker is stopped all arrive once after wake, with the right badge and no duplicate notifications", async () => {
  const page = await linkByQr();
  await page.close();
  const blank = await ext.context.newPage();
  await stopWorkers(ext, blank);
  for (const n of [1, 2, 3]) await bob.run(["send", "alice", `while asleep ${n}`]);
  const woke = Date.now();
  const popup = await openPopup(ext); // wakes the worker
  await until(async () => (await badge()) === "3", "badge 3 after wake", 20000);
  console.log(`measure: worker wake to badge updated (3 queued messages): ${Date.now() - woke} ms`);
  const snap = await snapshotOf();
  assert.equal(snap.chats.find((c) => c.handle === "bob").unread, 3);
  const shown = await notifications();
  assert.equal(Object.keys(shown).length, 3, "one notification per message");
  await popup.click('#chat-list [data-chat="bob"]');
  await popup.waitForSelector("#messages", { state: "visible" });
  await until(async () => (await popup.locator("#messages").textContent()).includes("while asleep 3"), "messages shown");
  const text = await popup.locator("#messages").textContent();
  for (const n of [1, 2, 3]) assert.equal(text.split(`while asleep ${n}`).length - 1, 1, `message ${n} exactly once`);
});

test("6. the primary unlinks the extension: the popup returns to the QR with the reason, and local data is gone", async () => {
  const page = await linkByQr();
  await alice.run(["unlink", "1"]);
  await page.waitForSelector("#unlinked-reason", { state: "visible", timeout: 15000 });
  assert.match(await page.textContent("#unlinked-reason"), /logged out/i);
  await page.waitForSelector("#qr svg", { state: "visible", timeout: 15000 });
  const keys = await ext.worker.evaluate(async () => Object.keys(await chrome.storage.local.get(null)));
  assert.ok(!keys.some((k) => k.startsWith("kv/messages/") || k.startsWith("kv/chats/") || k.startsWith("kv/contacts/")), `no chats or messages left: ${keys}`);
  assert.deepEqual(Object.keys(await historyRecords(ext, "messages")), [], "no history left in IndexedDB");
  assert.deepEqual(Object.keys(await historyRecords(ext, "words")), [], "nor its word index");
  assert.equal(await badge(), "?", "the not-linked badge");
});

test("9. reading on the primary clears the badge and the notification here (read-sync)", async () => {
  await linkByQr();
  await bob.run(["send", "alice", "read me on the phone"]);
  await until(async () => (await badge()) === "1", "badge 1");
  await until(async () => Object.keys(await notifications()).length === 1, "a notification");
  await alice.run(["read", "bob"]); // the primary reads: read-sync to this browser
  await until(async () => (await badge()) === "", "badge cleared by read-sync");
  await until(async () => Object.keys(await notifications()).length === 0, "notification cleared");
});

test("14. a \"Choose chat…\" share is sent only by an explicit \"Send here\", and expires", async () => {
  const first = await linkByQr();
  await first.close();
  const pending = async () => (await ext.worker.evaluate(() => chrome.storage.session.get("pendingShare"))).pendingShare;
  const bobHas = async (url) => (await bob.run(["read", "alice"])).stdout.includes(url);

  // Chosen three minutes ago: opening a chat shows no offer, and it is dropped unsent.
  await ext.worker.evaluate(() =>
    chrome.storage.session.set({ pendingShare: { url: "https://example.org/stale", title: "Stale", selection: "", at: Date.now() - 3 * 60_000 } }),
  );
  let popup = await openPopup(ext);
  await popup.click('#chat-list [data-chat="bob"] .chat-open');
  await popup.waitForSelector("#composer", { state: "visible" });
  assert.equal(await popup.isHidden("#share-bar"), true, "no offer for a stale share");
  await until(async () => (await pending()) === undefined, "the stale share is dropped");
  await popup.close();

  // A fresh one: opening a chat offers it and sends nothing; "Send here" sends it.
  const info = { menuItemId: "tether-choose", editable: false, pageUrl: "https://example.org/page", linkUrl: "https://example.org/fresh" };
  await ext.worker.evaluate((i) => globalThis.tether.menuClick(i, undefined).catch(() => {}), info);
  popup = await openPopup(ext);
  await popup.click('#chat-list [data-chat="bob"] .chat-open');
  await popup.waitForSelector("#share-bar:not([hidden])", { timeout: 5000 });
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await bobHas("example.org/fresh"), false, "opening a chat sends nothing");
  await popup.click("#share-send");
  await until(() => bobHas("example.org/fresh"), "the explicitly chosen chat gets the share");
  assert.equal(await bobHas("example.org/stale"), false, "the stale share never went anywhere");
});
