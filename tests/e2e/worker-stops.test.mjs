// Chrome stops an idle MV3 service worker at will. Here it is stopped again
// and again while a contact (the real CLI) sends 200 messages: every message
// must end up in the chat exactly once, with exactly one notification each
// (the notification id carries the message id), however the stops fall
// between "stored", "acknowledged" and "shown".

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { historyRecords, launch, linkByQr as linkTo, openPopup, screenshot, stopWorkers } from "./lib/extension.mjs";
import { startServer, aliceAndBob, until } from "./lib/tether.mjs";

const MESSAGES = 200;

let server, alice, bob, ext;

before(async () => {
  server = await startServer();
  ({ alice, bob } = await aliceAndBob(server));
  ext = await launch();
});

after(async () => {
  await ext?.close();
  await server?.stop();
  await alice?.cleanup();
  await bob?.cleanup();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Links the extension to alice by a QR read from a screenshot of the popup. */
async function linkByQr() {
  const page = await linkTo(ext, server, alice, "alice", "worker-stops-link-qr");
  await page.close();
}

/** bob's messages as this browser stored them: text → ids (the history in IndexedDB). */
async function storedMessages() {
  /** @type {Record<string, string[]>} */
  const byText = {};
  for (const value of Object.values(await historyRecords(ext, "messages"))) {
    const m = JSON.parse(value);
    if (m.chat !== "bob" || m.fromMe || m.body?.kind !== "text") continue;
    (byText[m.body.body] ??= []).push(m.id);
  }
  return byText;
}

const notificationIds = () => ext.worker.evaluate(async () => Object.keys(await chrome.notifications.getAll()));

/** Every notification id seen on show (collected while the worker is awake). */
const seen = new Set();
async function collect() {
  for (const id of await notificationIds()) seen.add(id);
}

test(`the worker is stopped again and again while ${MESSAGES} messages arrive: each is stored once and notified once`, { timeout: 600_000 }, async () => {
  await linkByQr();
  const blank = await ext.context.newPage();
  await blank.goto("about:blank");

  let sent = 0;
  const sending = (async () => {
    for (let i = 1; i <= MESSAGES; i++) {
      await bob.run(["send", "alice", `burst ${i}`]);
      sent = i;
    }
  })();
  let finished = false;
  sending.then(
    () => (finished = true),
    () => (finished = true),
  );

  // Stop, wait, wake (a popup opens), wait: with varying gaps so that stops
  // land between every step of receiving (stored, acknowledged, shown).
  let stops = 0;
  for (let round = 0; !finished; round++) {
    await stopWorkers(ext, blank);
    stops++;
    await sleep(150 + (round % 5) * 200);
    const popup = await openPopup(ext);
    await sleep(100 + (round % 7) * 150);
    await collect();
    await popup.close();
  }
  await sending;
  assert.equal(sent, MESSAGES);
  assert.ok(stops >= 3, `the worker was stopped ${stops} times while the messages arrived`);

  // Wake once more and let the queue drain.
  const popup = await openPopup(ext);
  const stored = await until(async () => {
    await collect();
    const s = await storedMessages();
    return Object.keys(s).length === MESSAGES && s;
  }, `all ${MESSAGES} messages stored`, 120_000);
  const ids = [];
  for (let i = 1; i <= MESSAGES; i++) {
    const copies = stored[`burst ${i}`] ?? [];
    assert.equal(copies.length, 1, `message ${i} is stored exactly once`);
    ids.push(copies[0]);
  }
  assert.equal(new Set(ids).size, MESSAGES);

  // One notification per message, each with that message's id; none owed.
  // Chrome closes a notification by itself after a while (in headless
  // Chromium, within about 30 s), so the ones on show are collected at every
  // wake; ids are `msg:<chat>:<message id>`, so a message cannot have two.
  await until(async () => {
    await collect();
    return ids.every((id) => seen.has(`msg:bob:${id}`));
  }, `a notification for each of the ${MESSAGES} messages`, 60_000);
  const shown = [...seen];
  const expected = new Set(ids.map((id) => `msg:bob:${id}`));
  assert.equal(shown.length, MESSAGES, "one notification per message, and none for anything else");
  for (const id of shown) assert.ok(expected.has(id), `notification ${id} belongs to a stored message`);
  const owed = await ext.worker.evaluate(async () => Object.keys(await chrome.storage.local.get(null)).filter((k) => k.startsWith("kv/notify/")).length);
  assert.equal(owed, 0, "no notification is still owed");

  const { snapshot } = await ext.worker.evaluate(() => chrome.storage.session.get("snapshot"));
  assert.equal(snapshot.chats.find((c) => c.handle === "bob")?.unread, MESSAGES, "all unread");

  // The chat pages: its latest 50 first, then 50 earlier ones at a time
  // on demand, the message on top staying where it was.
  await popup.click('#chat-list [data-chat="bob"] .chat-open');
  await popup.waitForSelector("#messages .msg", { state: "visible" });
  await until(async () => (await popup.locator("#messages .msg").count()) === 50, "the latest 50 messages shown");
  assert.equal(await popup.locator("#messages .msg .msg-text").first().textContent(), `burst ${MESSAGES - 49}`);
  const top = popup.locator("#messages .msg-text", { hasText: new RegExp(`^burst ${MESSAGES - 49}$`) });
  await popup.click("#earlier");
  await until(async () => (await popup.locator("#messages .msg").count()) === 100, "50 earlier ones added");
  const box = await popup.locator("#messages").boundingBox();
  const at = await top.boundingBox();
  assert.ok(at && box && at.y >= box.y - 1 && at.y < box.y + box.height, `the message that was on top is still in view (${JSON.stringify({ at, box })})`);
  for (let shown = 100; shown < MESSAGES; shown += 50) {
    await popup.click("#earlier");
    await until(async () => (await popup.locator("#messages .msg").count()) === Math.min(MESSAGES, shown + 50), "50 more earlier ones");
  }
  assert.equal(await popup.locator("#earlier").count(), 0, "nothing earlier left");
  await popup.close();
  console.log(`worker stopped ${stops} times while ${MESSAGES} messages arrived`);
});
