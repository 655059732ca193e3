// Groups in the phone web app, end to end: two phones (alice and bob,
// each the primary of its account, in its own Chromium at 390 × 844) and
// carol on the CLI, on a real tether-server that serves the web app.
// Alice makes a group on her phone; bob's phone gets it and both write
// with sender names; alice renames it and adds and removes carol from
// the group info screen; bob's phone follows.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { cp, mkdir } from "node:fs/promises";
import path from "node:path";
import { ARTIFACTS } from "./lib/extension.mjs";
import { launchPhone, onScreen, registerPhone } from "./lib/phone.mjs";
import { cliUser, startServer, until } from "./lib/tether.mjs";

/** Where the screenshots also go, for a person to look at. */
const SHOTS = process.env.TETHER_GROUP_SHOTS ?? "/tmp/shots-groups";

let server, carol, phoneA, phoneB;

before(async () => {
  server = await startServer();
  carol = await cliUser();
  await carol.run(["register", "carol", "--server", server.url]);
  [phoneA, phoneB] = await Promise.all([launchPhone(), launchPhone()]);
});

after(async () => {
  await phoneA?.close();
  await phoneB?.close();
  await server?.stop();
  await carol?.cleanup();
});

/** A screenshot of the phone at its size, light or dark, into the artifacts and SHOTS. */
async function phoneShot(page, name, scheme) {
  await page.emulateMedia({ colorScheme: scheme });
  await page.waitForSelector("#toast", { state: "hidden", timeout: 8000 });
  await page.waitForTimeout(150);
  await mkdir(ARTIFACTS, { recursive: true });
  await mkdir(SHOTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}-${scheme}.png`);
  await page.screenshot({ path: file });
  await cp(file, path.join(SHOTS, `${name}-${scheme}.png`));
  await page.emulateMedia({ colorScheme: "light" });
}

/** Starts a chat with `handle` (adding the contact) and writes `text` there; back to the list. */
async function writeTo(page, handle, text) {
  await page.click("#new-chat");
  await page.fill("#new-chat-input", handle);
  await page.click(`#contact-list [data-handle="${handle}"] .chat-open`);
  await page.waitForSelector("#composer", { state: "visible" });
  await page.fill("#composer", text);
  await page.press("#composer", "Enter");
  await page.waitForSelector(`#messages .msg.me:has-text("${text}")`, { timeout: 10000 });
  await page.click("#back");
  await onScreen(page, "list");
}

/** The members the group info lists: handle → "admin" or "". */
const members = (page) => page.$$eval("#group-members .member-row", (rows) => Object.fromEntries(rows.map((r) => [r.getAttribute("data-handle"), r.querySelector(".admin-badge") ? "admin" : ""])));

test("a group on the phone: made, messages both ways with sender names, renamed, a member added and removed", { timeout: 240000 }, async () => {
  const a = await phoneA.context.newPage();
  const b = await phoneB.context.newPage();
  await registerPhone(a, server, "alice", "Alice");
  await registerPhone(b, server, "bob", "Bob");
  await carol.run(["contacts", "add", "alice", "--name", "Alice"]);
  // Each adds the other by writing to them; alice adds carol too.
  await writeTo(a, "bob", "hi bob");
  await writeTo(b, "alice", "hi alice");
  await writeTo(a, "carol", "hi carol");

  // ---- New group from the new-chat screen.
  await a.click("#new-chat");
  await a.click("#new-group");
  await onScreen(a, "newgroup");
  await a.fill("#group-name-input", "Family");
  await a.check('#group-contacts [data-handle="bob"] .pick-box');
  await phoneShot(a, "groups-app-new-group", "light");
  await a.click("#group-create");
  await onScreen(a, "chat");
  await a.waitForSelector('#messages .event-line:has-text("You created the group “Family”")', { timeout: 10000 });
  await a.fill("#composer", "dinner at 8?");
  await a.press("#composer", "Enter");

  // ---- Bob's phone lists it with a group avatar; the message carries alice's name.
  const row = b.locator("#chat-list .chat-row.is-group", { hasText: "Family" });
  await row.waitFor({ timeout: 30000 });
  const chat = await row.getAttribute("data-chat");
  assert.match(chat ?? "", /^g:[0-9a-f]{32}$/);
  await row.locator(".chat-open").click();
  await onScreen(b, "chat");
  const fromAlice = b.locator('#messages .msg.them:has-text("dinner at 8?")');
  await fromAlice.waitFor({ timeout: 30000 });
  // The name alice chose, always with her handle (the core's rule for names peers choose).
  assert.equal(await fromAlice.locator(".sender").textContent(), "Alice (alice)");
  await b.fill("#composer", "on my way");
  await b.press("#composer", "Enter");
  const fromBob = a.locator('#messages .msg.them:has-text("on my way")');
  await fromBob.waitFor({ timeout: 30000 });
  assert.equal(await fromBob.locator(".sender").textContent(), "Bob (bob)");
  assert.equal(await a.textContent("#subtitle"), "You, Bob (bob)");
  for (const scheme of ["light", "dark"]) await phoneShot(a, "groups-app-chat", scheme);

  // ---- Group info: rename, add carol, then remove her.
  await a.click("#title");
  await onScreen(a, "group");
  assert.deepEqual(await members(a), { alice: "admin", bob: "" });
  await a.click("#group-rename");
  await a.fill("#group-rename-input", "Family dinner");
  await a.click("#group-rename-save");
  await until(async () => (await a.textContent("#group-name")) === "Family dinner", "renamed", 30000);
  await a.click("#group-add");
  await onScreen(a, "newgroup");
  await a.check('#group-contacts [data-handle="carol"] .pick-box');
  await a.click("#group-create");
  await onScreen(a, "group");
  await until(async () => "carol" in (await members(a)), "carol is in", 30000);
  for (const scheme of ["light", "dark"]) await phoneShot(a, "groups-app-info", scheme);
  await a.click('#group-members [data-handle="carol"] .member-more');
  await a.click('#group-members [data-handle="carol"] [data-action="remove"]');
  await until(async () => !("carol" in (await members(a))), "carol is out", 30000);

  // ---- Bob's phone follows: the new name and the lines.
  await until(async () => (await b.textContent("#title")) === "Family dinner", "bob sees the new name", 30000);
  for (const line of ["Alice (alice) renamed the group to “Family dinner”", "Alice (alice) added carol", "Alice (alice) removed carol"]) {
    await b.waitForSelector(`#messages .event-line:has-text("${line}")`, { timeout: 30000 });
  }
  await b.click("#title");
  await onScreen(b, "group");
  assert.deepEqual(await members(b), { alice: "admin", bob: "" });
  assert.equal(await b.isVisible("#group-add"), false, "not an admin: nothing to add");
  assert.equal(await b.isVisible("#group-rename"), false, "not an admin: no renaming");
  assert.equal(await b.isVisible("#group-leave"), true, "anyone may leave");
});
