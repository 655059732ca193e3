// Message requests end to end (issue 9, finding 7): the built extension
// linked to a CLI primary (alice); a stranger (mallory, another CLI) writes
// to alice. The popup shows one "Message requests (1)" entry, no chat, no
// badge and no notification; accepting turns it into a chat, and later
// messages notify.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdir, copyFile } from "node:fs/promises";
import path from "node:path";
import { launch, linkByQr, openPopup, screenshot } from "./lib/extension.mjs";
import { startServer, cliUser, until } from "./lib/tether.mjs";

/** Where the screenshots are copied for review (beside the test artifacts). */
const SHOTS = process.env.TETHER_SHOTS;

let server, alice, mallory, ext;

before(async () => {
  server = await startServer();
  alice = await cliUser();
  mallory = await cliUser();
  await alice.run(["register", "alice", "--server", server.url]);
  await mallory.run(["register", "mallory", "--server", server.url]);
  await mallory.run(["contacts", "add", "alice"]);
  ext = await launch();
});

after(async () => {
  await ext?.close();
  await server?.stop();
  await alice?.cleanup();
  await mallory?.cleanup();
});

const snapshotOf = async () => (await ext.worker.evaluate(() => chrome.storage.session.get("snapshot"))).snapshot;
const badge = () => ext.worker.evaluate(() => chrome.action.getBadgeText({}));
const notifications = () => ext.worker.evaluate(() => chrome.notifications.getAll());

async function shot(page, name) {
  const file = await screenshot(page, name);
  if (SHOTS) {
    await mkdir(SHOTS, { recursive: true });
    await copyFile(file, path.join(SHOTS, `${name}.png`));
  }
}


test("a stranger's messages: no notification, one request entry; accept makes a chat that notifies", async () => {
  const page = await linkByQr(ext, server, alice, "alice", "requests-link-qr");
  for (const text of ["hi alice, cheap watches", "second pitch", "third pitch"]) {
    await mallory.run(["send", "alice", text]);
  }
  await until(async () => (await snapshotOf())?.requests?.[0]?.count === 3, "one request with 3 messages");
  const snap = await snapshotOf();
  assert.equal(snap.requests.length, 1, "one entry per sender");
  assert.equal(snap.requests[0].handle, "mallory");
  assert.equal(snap.chats.length, 0, "nothing in the chat list");
  assert.equal(snap.unread, 0);
  assert.equal(await badge(), "", "the badge counts accepted chats only");
  assert.deepEqual(Object.keys(await notifications()), [], "no notification for a stranger");

  await page.waitForSelector("#requests-entry:not([hidden])", { timeout: 10000 });
  assert.match(await page.textContent("#requests-entry"), /Message requests \(1\)/);
  assert.equal(await page.locator('#chat-list [data-chat="mallory"]').count(), 0);
  await shot(page, "requests-list-light");
  const dark = await openPopup(ext, { colorScheme: "dark" });
  await dark.waitForSelector("#requests-entry:not([hidden])", { timeout: 10000 });
  await shot(dark, "requests-list-dark");
  await dark.click("#requests-entry");
  await dark.waitForSelector('#request-list [data-request="mallory"]');
  await shot(dark, "requests-screen-dark");
  await dark.close();

  await page.click("#requests-entry");
  const row = await page.waitForSelector('#request-list [data-request="mallory"]');
  const text = await row.textContent();
  assert.match(text, /@mallory/);
  assert.match(text, /3 messages/);
  assert.match(text, /hi alice, cheap watches/);
  await shot(page, "requests-screen-light");

  await page.click('#request-list [data-request="mallory"] [data-action="accept"]');
  await until(async () => (await snapshotOf()).requests.length === 0, "the request is gone");
  await page.click("#back");
  await page.waitForSelector('#chat-list [data-chat="mallory"]', { timeout: 10000 });
  assert.ok(await page.locator("#requests-entry").isHidden(), "no requests left: no entry");
  assert.deepEqual(Object.keys(await notifications()), [], "accepting notifies nothing");

  await mallory.run(["send", "alice", "now we are talking"]);
  const shown = await until(async () => Object.keys(await notifications()).length === 1 && (await notifications()), "a notification");
  assert.match(Object.keys(shown)[0], /^msg:mallory:/);
  await until(async () => (await badge()) === "4", "badge: 3 accepted + 1 new unread");
});
