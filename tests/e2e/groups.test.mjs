// Groups in the extension's popup, end to end: two browsers with the
// extension, linked to alice's and to bob's CLI primaries, and carol and
// dave on the CLI, all on a real tether-server. Alice's popup makes the
// group; messages go both ways with sender names; "read by"; the context
// menu sends a page, a link, a selection and an image to the group; the
// group info screen adds, removes, promotes and renames; bob leaves and
// his chat turns read-only.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { cp, mkdir } from "node:fs/promises";
import path from "node:path";
import { errors, launch, linkByQr, screenshot, spyOnMenus } from "./lib/extension.mjs";
import { png } from "./lib/png.mjs";
import { cliUser, startServer, until } from "./lib/tether.mjs";

/** Where the screenshots also go, for a person to look at. */
const SHOTS = process.env.TETHER_GROUP_SHOTS ?? "/tmp/shots-groups";

let server, alice, bob, carol, dave, extA, extB, web;

before(async () => {
  server = await startServer();
  [alice, bob, carol, dave] = await Promise.all([cliUser(), cliUser(), cliUser(), cliUser()]);
  for (const [u, handle] of [[alice, "alice"], [bob, "bob"], [carol, "carol"], [dave, "dave"]]) await u.run(["register", handle, "--server", server.url]);
  for (const [h, name] of [["bob", "Bob"], ["carol", "Carol"], ["dave", "Dave"]]) await alice.run(["contacts", "add", h, "--name", name]);
  for (const [u, name] of [[bob, "Bob"], [carol, "Carol"], [dave, "Dave"]]) await u.run(["contacts", "add", "alice", "--name", "Alice"]);
  await bob.run(["contacts", "add", "carol", "--name", "Carol"]);
  // A chat with bob on each side, so both browsers have something to sync.
  await alice.run(["send", "bob", "hello bob"]);
  await bob.run(["send", "alice", "hi alice"]);
  extA = await launch();
  extB = await launch();
  await spyOnMenus(extA);
});

after(async () => {
  web?.close();
  await extA?.close();
  await extB?.close();
  await server?.stop();
  for (const u of [alice, bob, carol, dave]) await u?.cleanup();
});

/** A screenshot into the artifacts and into SHOTS (once a toast has gone). */
async function shot(page, name) {
  await page.waitForSelector("#toast", { state: "hidden", timeout: 8000 });
  const file = await screenshot(page, name);
  await mkdir(SHOTS, { recursive: true });
  await cp(file, path.join(SHOTS, `${name}.png`));
}

/** The popup's messages, as text. */
const messagesText = (page) => page.locator("#messages").textContent();

/** Waits until the open chat shows `text`. */
const shows = (page, text, what = text, timeout = 20000) => until(async () => (await messagesText(page)).includes(text), what, timeout);

/** The group's chat key, from the popup's cached snapshot. */
async function groupChat(ext, name) {
  return until(async () => {
    const { snapshot } = await ext.worker.evaluate(() => chrome.storage.session.get("snapshot"));
    return snapshot?.chats.find((c) => c.group && c.name === name)?.handle;
  }, `the group “${name}” in the chat list`, 30000);
}

/** Sends from the open chat's composer. */
async function say(page, text) {
  await page.fill("#composer", text);
  await page.press("#composer", "Enter");
}

/** Back to the chat list and into the chat again: opening a chat reads it. */
async function reopen(page, chat) {
  await page.click("#back");
  await page.click(`#chat-list [data-chat="${chat}"] .chat-open`);
  await page.waitForSelector('#view[data-screen="chat"]', { timeout: 5000 });
}

/** Opens the group info screen from the chat's header. */
async function openInfo(page) {
  await page.click("#title");
  await page.waitForSelector('#view[data-screen="group"] #group-members .member-row', { timeout: 10000 });
}

/** Back from the group info to the chat. */
async function backToChat(page) {
  await page.click("#back");
  await page.waitForSelector('#view[data-screen="chat"]', { timeout: 5000 });
}

/** The members the info screen lists: handle → "admin" or "". */
async function members(page) {
  return page.$$eval("#group-members .member-row", (rows) => Object.fromEntries(rows.map((r) => [r.getAttribute("data-handle"), r.querySelector(".admin-badge") ? "admin" : ""])));
}

test("a group in the popup: made, messages both ways with sender names, read by, the context menu, members changed, left", { timeout: 300000 }, async () => {
  const pageA = await linkByQr(extA, server, alice, "alice", "groups-link-alice");
  const pageB = await linkByQr(extB, server, bob, "bob", "groups-link-bob");
  await pageA.waitForSelector('#chat-list [data-chat="bob"]', { timeout: 15000 });

  // ---- New group: name, contacts ticked, create.
  await pageA.click("#new-chat");
  await pageA.click("#new-group");
  await pageA.waitForSelector('#view[data-screen="newgroup"]');
  assert.equal(await pageA.isDisabled("#group-create"), true, "nothing picked: nothing to create");
  await pageA.fill("#group-name-input", "Climbing");
  await pageA.check('#group-contacts [data-handle="bob"] .pick-box');
  await pageA.check('#group-contacts [data-handle="carol"] .pick-box');
  assert.deepEqual(await pageA.$$eval("#group-picked .chip", (cs) => cs.map((c) => c.getAttribute("data-handle"))), ["bob", "carol"]);
  assert.equal(await pageA.isDisabled("#group-create"), false);
  for (const scheme of ["light", "dark"]) {
    await pageA.emulateMedia({ colorScheme: scheme });
    await shot(pageA, `groups-popup-new-group-${scheme}`);
  }
  await pageA.emulateMedia({ colorScheme: "light" });
  await pageA.click("#group-create");
  await pageA.waitForSelector('#view[data-screen="chat"]', { timeout: 10000 });
  await pageA.waitForSelector('#messages .event-line:has-text("You created the group “Climbing”")', { timeout: 10000 });
  assert.equal(await pageA.textContent("#title"), "Climbing");
  assert.equal(await pageA.textContent("#subtitle"), "You, Bob, Carol");
  const chat = await groupChat(extA, "Climbing");
  assert.match(chat, /^g:[0-9a-f]{32}$/);

  // ---- Bob's browser gets the group: listed with a group avatar, the creation line.
  const rowB = await pageB.waitForSelector(`#chat-list [data-chat="${chat}"]`, { timeout: 30000 });
  assert.match(await rowB.textContent(), /Climbing/);
  assert.equal(await pageB.locator(`#chat-list [data-chat="${chat}"] .avatar.is-group`).count(), 1, "a group's avatar");
  await pageB.click(`#chat-list [data-chat="${chat}"] .chat-open`);
  await pageB.waitForSelector('#messages .event-line:has-text("Alice created the group “Climbing”")', { timeout: 15000 });

  // ---- Messages both ways, each with its sender's name and colour.
  await say(pageA, "hello climbers");
  await pageB.waitForSelector('#messages .msg.them:has-text("hello climbers")', { timeout: 30000 });
  assert.equal(await pageB.locator('#messages .msg.them:has-text("hello climbers") .sender').textContent(), "Alice");
  await say(pageB, "hi from bob");
  await say(pageB, "see you saturday");
  await pageA.waitForSelector('#messages .msg.them:has-text("see you saturday")', { timeout: 30000 });
  const senders = await pageA.$$eval("#messages .msg.them .sender", (s) => s.map((e) => ({ name: e.textContent, color: getComputedStyle(e).color, hue: /** @type {HTMLElement} */ (e).style.getPropertyValue("--hue") })));
  assert.deepEqual(senders.map((s) => s.name), ["Bob"], "the name once above bob's run of bubbles");
  assert.ok(senders[0].hue, "the sender's colour comes from the handle");
  assert.notEqual(senders[0].color, await pageA.$eval("#messages .msg.them .msg-text", (e) => getComputedStyle(e).color), "the name is in colour");

  // ---- Carol writes from the CLI (the group by its name): her name in another colour.
  await carol.run(["chats"]);
  await carol.run(["send", "Climbing", "count me in"]);
  await pageA.waitForSelector('#messages .msg.them:has-text("count me in")', { timeout: 30000 });
  const carolLabel = pageA.locator('#messages .msg.them:has-text("count me in") .sender');
  assert.equal(await carolLabel.textContent(), "Carol");
  assert.notEqual(await carolLabel.evaluate((e) => getComputedStyle(e).color), senders[0].color, "each sender has a colour of their own");

  // ---- Ticks: bob reads it (opening the chat reads it), carol's CLI got it: delivered, not all read.
  await reopen(pageB, chat);
  const mine = pageA.locator('#messages .msg.me:has-text("hello climbers")');
  await until(async () => (await mine.getAttribute("data-status")) === "delivered", "delivered to everyone, read by some", 30000);
  assert.equal(await mine.locator(".ticks.read").count(), 0, "not blue until everyone read it");
  await mine.locator(".meta-btn").click();
  await pageA.waitForSelector(".read-by .read-by-list li", { timeout: 10000 });
  assert.deepEqual(await pageA.$$eval('.read-by-list[data-status="read"] li', (l) => l.map((e) => e.textContent)), ["Bob"]);
  assert.deepEqual(await pageA.$$eval('.read-by-list[data-status="delivered"] li', (l) => l.map((e) => e.textContent)), ["Carol"]);
  for (const scheme of ["light", "dark"]) {
    await pageA.emulateMedia({ colorScheme: scheme });
    await shot(pageA, `groups-popup-chat-${scheme}`);
  }
  await pageA.emulateMedia({ colorScheme: "light" });
  await mine.locator(".meta-btn").click();

  // ---- The context menu offers the group (alice sent to it) and sends page, link, selection, image.
  await until(async () => (await extA.worker.evaluate(() => /** @type {any} */ (globalThis).menuItems)).some((i) => i.id === `chat:${chat}` && i.title === "Climbing"), "the group in “Send to Tether”");
  const image = png(320, 200);
  web = createServer((req, res) => {
    if (req.url === "/open/peak.png") {
      res.setHeader("access-control-allow-origin", "*");
      res.setHeader("content-type", "image/png");
      return res.end(image);
    }
    res.setHeader("content-type", "text/html");
    res.end(`<title>Crag guide</title><p>Grade 6a, bolted</p><a href="https://example.org/topo">topo</a><img src="/open/peak.png">`);
  });
  await new Promise((r) => web.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${web.address().port}`;
  const tab = { id: -1, url: `${base}/crag.html`, title: "Crag guide" };
  const click = (info) => extA.worker.evaluate(([i, t]) => globalThis.tether.menuClick(i, t), [{ menuItemId: `chat:${chat}`, editable: false, pageUrl: tab.url, frameUrl: tab.url, ...info }, tab]);
  await click({});
  await click({ linkUrl: "https://example.org/topo", selectionText: "topo" });
  await click({ selectionText: "Grade 6a, bolted" });
  const outcome = await click({ mediaType: "image", srcUrl: `${base}/open/peak.png` });
  assert.equal(outcome?.sent, "image", `the image itself (${JSON.stringify(extA.logs.slice(-5))})`);
  await shows(pageB, "Crag guide", "bob gets the page");
  await shows(pageB, "example.org/topo", "bob gets the link");
  await shows(pageB, "Grade 6a, bolted", "bob gets the selection");
  await until(async () => (await pageB.locator("#messages .msg.them .file-image").last().getAttribute("src").catch(() => null))?.startsWith("blob:"), "bob sees the image", 30000);
  assert.ok(await pageB.locator('#messages .msg.them .sender:has-text("Alice")').count() >= 1);

  // ---- Group info: members with admin badges; alice adds dave, makes bob an admin, removes carol, renames.
  await openInfo(pageA);
  assert.deepEqual(await members(pageA), { alice: "admin", bob: "", carol: "" });
  assert.equal(await pageA.textContent("#group-count"), "3 members");
  for (const scheme of ["light", "dark"]) {
    await pageA.emulateMedia({ colorScheme: scheme });
    await shot(pageA, `groups-popup-info-${scheme}`);
  }
  await pageA.emulateMedia({ colorScheme: "light" });
  await pageA.click("#group-add");
  await pageA.waitForSelector('#view[data-screen="newgroup"]');
  assert.deepEqual(await pageA.$$eval("#group-contacts [data-handle]", (r) => r.map((e) => e.getAttribute("data-handle"))), ["dave"], "only contacts not in the group");
  await pageA.check('#group-contacts [data-handle="dave"] .pick-box');
  await pageA.click("#group-create");
  await pageA.waitForSelector('#view[data-screen="group"]');
  await until(async () => "dave" in (await members(pageA)), "dave is a member", 30000);

  await pageA.click('#group-members [data-handle="bob"] .member-more');
  await pageA.click('#group-members [data-handle="bob"] [data-action="admin"]');
  await until(async () => (await members(pageA)).bob === "admin", "bob is an admin", 30000);
  await pageA.click('#group-members [data-handle="carol"] .member-more');
  await pageA.click('#group-members [data-handle="carol"] [data-action="remove"]');
  await until(async () => !("carol" in (await members(pageA))), "carol is out", 30000);

  await pageA.click("#group-rename");
  await pageA.fill("#group-rename-input", "Climbing crew");
  await pageA.press("#group-rename-input", "Enter");
  await until(async () => (await pageA.textContent("#group-name")) === "Climbing crew", "renamed", 30000);
  await backToChat(pageA);
  for (const line of ["You added Dave", "Bob is now an admin", "You removed Carol", "You renamed the group to “Climbing crew”"]) {
    await pageA.waitForSelector(`#messages .event-line:has-text("${line}")`, { timeout: 10000 });
  }
  // Bob's browser follows: the new name, the lines, and he may change the group now.
  await until(async () => (await pageB.textContent("#title")) === "Climbing crew", "bob sees the new name", 30000);
  await shows(pageB, "Alice removed Carol", "bob sees carol removed");
  await openInfo(pageB);
  assert.deepEqual(await members(pageB), { alice: "admin", bob: "admin", dave: "" });
  assert.equal(await pageB.isVisible("#group-add"), true, "an admin adds members");

  // ---- Dave out too; bob, the one member left, reads it: blue ticks.
  // Bob is on his chat list, so the message waits unread there.
  await backToChat(pageB);
  await pageB.click("#back");
  await openInfo(pageA);
  await pageA.click('#group-members [data-handle="dave"] .member-more');
  await pageA.click('#group-members [data-handle="dave"] [data-action="remove"]');
  await until(async () => !("dave" in (await members(pageA))), "dave is out", 30000);
  await backToChat(pageA);
  await say(pageA, "just us two now");
  const last = pageA.locator('#messages .msg.me:has-text("just us two now")');
  await until(async () => (await last.getAttribute("data-status")) === "delivered", "delivered to bob", 30000);
  assert.equal(await last.locator(".ticks.read").count(), 0, "not read yet");
  await pageB.click(`#chat-list [data-chat="${chat}"] .chat-open`);
  await shows(pageB, "just us two now", "bob gets it");
  await until(async () => (await last.locator(".ticks.read").count()) === 1, "blue ticks once everyone read it", 30000);
  // A message that arrives while bob has the chat open is read at once.
  await say(pageA, "and this one you see at once");
  await shows(pageB, "and this one you see at once", "bob gets it with the chat open");
  const seenAtOnce = pageA.locator('#messages .msg.me:has-text("and this one you see at once")');
  await until(async () => (await seenAtOnce.locator(".ticks.read").count()) === 1, "blue ticks with no reopen", 30000);

  // ---- Bob leaves: his chat turns read-only; alice sees the line.
  await openInfo(pageB);
  assert.deepEqual(await members(pageB), { alice: "admin", bob: "admin" });
  await pageB.click("#group-leave");
  await pageB.click("#group-leave-yes");
  await until(async () => (await pageB.isVisible("#group-left")), "bob's info says he is out", 30000);
  assert.equal(await pageB.isVisible("#group-leave"), false, "nothing left to leave");
  await backToChat(pageB);
  assert.equal(await pageB.isVisible("#chat-readonly"), true, "a note in place of the composer");
  assert.equal(await pageB.isVisible("#composer"), false);
  await shot(pageB, "groups-popup-left-light");
  await pageA.waitForSelector('#messages .event-line:has-text("Bob left")', { timeout: 30000 });
  assert.deepEqual(errors(extA).filter((e) => !/Failed to load resource/.test(e.text)), [], "no console errors in alice's browser");
});

