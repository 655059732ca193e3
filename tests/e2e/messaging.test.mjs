// Everyday messaging end to end, in the popup and in the phone web app:
// alice's browser (the extension, linked to her CLI primary), bob's phone
// (the web app, his account's primary) and carol on the CLI, on a real
// tether-server. Alice and bob, then alice and carol, reply to, react to,
// edit and delete each other's messages and see what the other did; the
// popup finds a message by search and opens it; a draft outlives the
// popup and a stop of the worker; the context menu sends to the note to
// self; a chat is marked unread and opened again; the chat's timer of
// disappearing messages is set. Screenshots of both at their sizes, light
// and dark, go to TETHER_ARTIFACTS.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { ARTIFACTS, errors, launch, linkByQr, openPopup, screenshot, spyOnMenus, stopWorkers } from "./lib/extension.mjs";
import { launchPhone, onScreen, registerPhone } from "./lib/phone.mjs";
import { cliUser, startServer, until } from "./lib/tether.mjs";

let server, alice, carol, ext, phone;

before(async () => {
  server = await startServer();
  [alice, carol] = await Promise.all([cliUser(), cliUser()]);
  [ext, phone] = await Promise.all([
    launch(),
    launchPhone(),
    alice.run(["register", "alice", "--server", server.url]),
    carol.run(["register", "carol", "--server", server.url]).then(() => carol.run(["contacts", "add", "alice", "--name", "Alice"])),
  ]);
  await spyOnMenus(ext);
});

after(async () => {
  await ext?.close();
  await phone?.close();
  await server?.stop();
  await alice?.cleanup();
  await carol?.cleanup();
});

// ---- helpers --------------------------------------------------------------------------------

/** The bubble of the open chat whose own text (not a quote of it) is `text`. */
const bubbleWith = (page, text) => page.locator("#messages .msg").filter({ has: page.locator(".msg-text", { hasText: text }) }).last();
/** The message with this id. */
const byId = (page, id) => page.locator(`#messages .msg[data-id="${id}"]`);

/** Sends `text` from the open chat's composer; returns its message id once it shows. */
async function say(page, text) {
  await page.fill("#composer", text);
  await page.press("#composer", "Enter");
  const msg = bubbleWith(page, text);
  await msg.waitFor({ timeout: 10000 });
  return msg.getAttribute("data-id");
}

/** Waits until the open chat shows a message (not a quote) saying `text`; returns its id. */
async function seen(page, text, timeout = 20000) {
  const msg = bubbleWith(page, text);
  await msg.waitFor({ timeout });
  return msg.getAttribute("data-id");
}

/**
 * Opens a message's menu: the button on the bubble (the popup, with a
 * mouse), or a right click / long press (the phone, which has no hover).
 */
async function menu(page, id, { touch = false } = {}) {
  const msg = byId(page, id);
  if (touch) await msg.locator(".bubble").click({ button: "right", position: { x: 12, y: 12 } });
  else {
    await msg.locator(".bubble").hover();
    await msg.locator(".msg-more").click();
  }
  await page.waitForSelector("#msg-menu:not([hidden]) .menu-item", { timeout: 5000 });
}

/** The reaction chips under a message: emoji → [count, mine]. */
const chips = (page, id) =>
  byId(page, id).locator(".reaction").evaluateAll((els) => Object.fromEntries(els.map((e) => [e.getAttribute("data-emoji"), [Number(e.querySelector(".reaction-count")?.textContent), e.getAttribute("aria-pressed") === "true"]])));

/** A screenshot of the popup (380 wide), light or dark. */
async function popupShot(page, name, scheme) {
  await page.emulateMedia({ colorScheme: scheme });
  await page.waitForSelector("#toast", { state: "hidden", timeout: 8000 });
  // Away from the bubbles, once a menu button has faded out.
  await page.mouse.move(190, 20);
  await page.evaluate(() => /** @type {HTMLElement | null} */ (document.activeElement)?.blur());
  await page.waitForTimeout(200);
  await screenshot(page, `${name}-${scheme}`);
  await page.emulateMedia({ colorScheme: "light" });
}

/** A screenshot of the phone at its size, light or dark. */
async function phoneShot(page, name, scheme) {
  await page.emulateMedia({ colorScheme: scheme });
  await page.waitForSelector("#toast", { state: "hidden", timeout: 8000 });
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}-${scheme}.png`) });
  await page.emulateMedia({ colorScheme: "light" });
}

/** Waits until the popup shows `screen`. */
const onScreenPopup = (page, screen) => page.waitForSelector(`#view[data-screen="${screen}"]`, { timeout: 5000 });

/** The popup's cached snapshot (what the worker last published). */
const snapshot = async () => (await ext.worker.evaluate(() => chrome.storage.session.get("snapshot"))).snapshot;

// ---- the test ---------------------------------------------------------------------------------

test("replies, reactions, edits and deletes both ways between the popup and the phone; search, drafts, note to self, unread, timer", { timeout: 180000 }, async () => {
  const t0 = Date.now();
  const b = await phone.context.newPage();
  await registerPhone(b, server, "bob", "Bob");
  await alice.run(["contacts", "add", "bob", "--name", "Bob"]);
  await alice.run(["contacts", "add", "carol", "--name", "Carol"]);
  const a = await linkByQr(ext, server, alice, "alice", "messaging-link");
  console.log(`set up in ${Date.now() - t0} ms`);
  // The note to self is in "Send to Tether" from the start (before it was ever written to).
  await until(async () => (await ext.worker.evaluate(() => /** @type {any} */ (globalThis).menuItems)).some((i) => i.id === "chat:alice" && i.title === "Note to self"), "“Note to self” in “Send to Tether”");

  // ---- Bob writes twice; alice opens the chat at "2 unread messages".
  await b.click("#new-chat");
  await b.fill("#new-chat-input", "alice");
  await b.click('#contact-list [data-handle="alice"] .chat-open');
  await onScreen(b, "chat");
  const lunch = await say(b, "Lunch on friday?");
  const pizza = await say(b, "Pizza or sushi?");
  await a.waitForSelector('#chat-list [data-chat="bob"] .unread:has-text("2")', { timeout: 20000 });
  await a.click('#chat-list [data-chat="bob"] .chat-open');
  await seen(a, "Pizza or sushi?");
  assert.equal(await a.textContent("#unread-line"), "2 unread messages");
  assert.equal(await a.evaluate(() => document.querySelector("#unread-line")?.nextElementSibling?.textContent?.includes("Lunch on friday?")), true, "the line is above the first unread message");
  await popupShot(a, "messaging-popup-unread", "light");

  // ---- Alice: a reply (the menu's Reply, the bar above the composer), a reaction, an edit, a delete.
  await menu(a, pizza);
  await popupShot(a, "messaging-popup-menu", "light");
  await a.click('#msg-menu [data-action="reply"]');
  assert.equal(await a.textContent("#compose-title"), "Replying to Bob");
  assert.equal(await a.textContent("#compose-quote"), "Pizza or sushi?");
  await popupShot(a, "messaging-popup-reply", "light");
  const sushi = await say(a, "Sushi, obviously");
  assert.equal(await a.isVisible("#compose-bar"), false, "the bar goes once the reply is sent");
  assert.equal(await byId(a, sushi).locator(".quote-author").textContent(), "Bob");
  assert.equal(await byId(a, sushi).locator(".quote-text").textContent(), "Pizza or sushi?");
  // The keyboard: Tab to a bubble's menu button, Enter, arrows, Esc back to the button.
  await byId(a, lunch).locator(".msg-more").focus();
  await a.keyboard.press("Enter");
  await a.waitForSelector("#msg-menu:not([hidden])");
  assert.equal(await a.evaluate(() => document.activeElement?.textContent), "👍");
  await a.keyboard.press("ArrowDown");
  assert.equal(await a.evaluate(() => document.activeElement?.getAttribute("data-action")), "reply");
  await a.keyboard.press("Escape");
  assert.equal(await a.isVisible("#msg-menu"), false);
  assert.equal(await a.evaluate(() => document.activeElement?.classList.contains("msg-more")), true, "the keyboard is back on the button");
  await menu(a, lunch);
  await a.click('#msg-menu .react-btn:has-text("👍")');
  await until(async () => JSON.stringify(await chips(a, lunch)) === JSON.stringify({ "👍": [1, true] }), "alice's 👍 under bob's message");
  const noon = await say(a, "See you at 12");
  await menu(a, noon);
  await a.click('#msg-menu [data-action="edit"]');
  assert.equal(await a.inputValue("#composer"), "See you at 12");
  assert.equal(await a.textContent("#compose-title"), "Editing message");
  await a.fill("#composer", "See you at 12:30");
  await a.press("#composer", "Enter");
  await byId(a, noon).locator(".msg-edited").waitFor({ timeout: 5000 });
  assert.equal(await byId(a, noon).locator(".msg-text").textContent(), "See you at 12:30");
  const wrong = await say(a, "wrong chat, sorry");
  await menu(a, wrong);
  await a.click('#msg-menu [data-action="delete"]');
  assert.equal(await a.textContent("#msg-menu .menu-title"), "Delete this message?");
  await a.click('#msg-menu [data-action="delete-everyone"]');
  await byId(a, wrong).locator(".deleted-text").waitFor({ timeout: 5000 });
  // Bob's message: only "for me".
  await menu(a, lunch);
  assert.equal(await a.locator('#msg-menu [data-action="edit"]').count(), 0, "no Edit on someone else's message");
  await a.click('#msg-menu [data-action="delete"]');
  assert.equal(await a.locator('#msg-menu [data-action="delete-everyone"]').count(), 0, "not for everyone: it is bob's");
  await a.keyboard.press("Escape");
  await a.keyboard.press("Escape");
  assert.equal(await a.isVisible("#msg-menu"), false);

  // ---- Bob's phone sees all four.
  const quote = byId(b, sushi);
  await quote.waitFor({ timeout: 20000 });
  assert.equal(await quote.locator(".quote-author").textContent(), "You", "bob's own message, quoted");
  assert.equal(await quote.locator(".quote-text").textContent(), "Pizza or sushi?");
  await until(async () => JSON.stringify(await chips(b, lunch)) === JSON.stringify({ "👍": [1, false] }), "alice's 👍 on bob's phone");
  await until(async () => (await byId(b, noon).locator(".msg-text").textContent().catch(() => "")) === "See you at 12:30", "the edit on bob's phone");
  await byId(b, wrong).locator(".deleted-text").waitFor({ timeout: 20000 });
  assert.equal(await byId(b, wrong).locator(".deleted-text").textContent(), "This message was deleted");
  await byId(b, noon).locator(".msg-edited").click();
  assert.deepEqual(await byId(b, noon).locator(".edit-old").allTextContents(), ["See you at 12"], "the earlier version, behind “edited”");
  // A click on the quote goes to the quoted message, highlighted.
  await quote.locator(".quote").click();
  await until(async () => (await byId(b, pizza).getAttribute("class"))?.includes("flash"), "the quoted message lights up");

  // ---- Bob (long press / right click on the phone): a reaction, a reply, an edit, a delete, and 👍 too.
  await menu(b, noon, { touch: true });
  await phoneShot(b, "messaging-app-menu", "light");
  await b.click('#msg-menu .react-btn:has-text("❤️")');
  await menu(b, noon, { touch: true });
  await b.click('#msg-menu [data-action="reply"]');
  const perfect = await say(b, "Perfect");
  const umbrella = await say(b, "Bring the umbrela");
  await menu(b, umbrella, { touch: true });
  await b.click('#msg-menu [data-action="edit"]');
  await b.fill("#composer", "Bring the umbrella");
  await b.press("#composer", "Enter");
  await byId(b, umbrella).locator(".msg-edited").waitFor({ timeout: 5000 });
  const oops = await say(b, "oops");
  await menu(b, oops, { touch: true });
  await b.click('#msg-menu [data-action="delete"]');
  await b.click('#msg-menu [data-action="delete-everyone"]');
  await menu(b, lunch, { touch: true });
  await b.click('#msg-menu .react-btn:has-text("👍")');

  // ---- Alice's popup sees them; her own 👍 chip, clicked, takes hers back.
  await until(async () => JSON.stringify(await chips(a, noon)) === JSON.stringify({ "❤️": [1, false] }), "bob's ❤️ in the popup", 20000);
  await byId(a, perfect).waitFor({ timeout: 20000 });
  assert.equal(await byId(a, perfect).locator(".quote-author").textContent(), "You");
  assert.equal(await byId(a, perfect).locator(".quote-text").textContent(), "See you at 12:30");
  await until(async () => (await byId(a, umbrella).locator(".msg-text").textContent().catch(() => "")) === "Bring the umbrella", "bob's edit in the popup");
  assert.equal(await byId(a, umbrella).locator(".msg-edited").count(), 1);
  await byId(a, oops).locator(".deleted-text").waitFor({ timeout: 20000 });
  await until(async () => JSON.stringify(await chips(a, lunch)) === JSON.stringify({ "👍": [2, true] }), "👍 2, alice's among them");
  // The popup's picture starts at bob's first message (its 👍 2), the phone shows it all.
  await a.evaluate((id) => {
    const box = /** @type {HTMLElement} */ (document.querySelector("#messages"));
    box.scrollTop = /** @type {HTMLElement} */ (box.querySelector(`[data-id="${id}"]`)).offsetTop - 8;
  }, lunch);
  for (const scheme of ["light", "dark"]) await popupShot(a, "messaging-popup-chat", scheme);
  for (const scheme of ["light", "dark"]) await phoneShot(b, "messaging-app-chat", scheme);
  await byId(a, lunch).locator(".reaction.mine").click();
  await until(async () => JSON.stringify(await chips(a, lunch)) === JSON.stringify({ "👍": [1, false] }), "alice's 👍 taken back");
  await until(async () => JSON.stringify(await chips(b, lunch)) === JSON.stringify({ "👍": [1, true] }), "only bob's 👍 left on his phone");
  // Delete for me: gone from alice's chat, still on bob's phone.
  await menu(a, oops);
  await a.click('#msg-menu [data-action="delete"]');
  await a.click('#msg-menu [data-action="delete-me"]');
  await byId(a, oops).waitFor({ state: "detached", timeout: 5000 });
  assert.equal(await byId(b, oops).count(), 1, "bob keeps it");

  // ---- Carol on the CLI: what the popup does, her `tether read` shows; what she does, the popup shows.
  const sent = async (args) => JSON.parse((await carol.run([...args, "--json"])).stdout.trim().split("\n").pop()).id;
  const tonight = await sent(["send", "alice", "Are you coming tonight?"]);
  await a.click("#back");
  await a.click('#chat-list [data-chat="carol"] .chat-open');
  await seen(a, "Are you coming tonight?");
  await menu(a, tonight);
  await a.click('#msg-menu [data-action="reply"]');
  const yes = await say(a, "Yes, at 8");
  await menu(a, tonight);
  await a.click("#msg-menu .react-more");
  await a.fill("#emoji-input", "🎉");
  await a.press("#emoji-input", "Enter");
  await until(async () => JSON.stringify(await chips(a, tonight)) === JSON.stringify({ "🎉": [1, true] }), "any emoji, typed");
  const eight = await say(a, "Bring snacks?");
  await menu(a, eight);
  await a.click('#msg-menu [data-action="edit"]');
  await a.fill("#composer", "Bring drinks?");
  await a.press("#composer", "Enter");
  const typo = await say(a, "sent too soon");
  await menu(a, typo);
  await a.click('#msg-menu [data-action="delete"]');
  await a.click('#msg-menu [data-action="delete-everyone"]');
  const read = await until(async () => {
    const out = (await carol.run(["read", "alice"])).stdout;
    return out.includes("Bring drinks? (edited)") && out.includes("🎉 Alice") && out.includes("This message was deleted") && out;
  }, "carol's CLI shows the edit, the reaction and the delete", 30000);
  assert.match(read, /alice: Yes, at 8\n\s+↳ replying to you: “Are you coming tonight\?”/);
  await carol.run(["react", yes, "👍"]);
  const cheers = await sent(["reply", eight, "Drinks it is"]);
  const late = await sent(["send", "alice", "I might be lat"]);
  await carol.run(["edit", late, "I might be late"]);
  const nope = await sent(["send", "alice", "nope"]);
  await carol.run(["delete", nope, "--everyone"]);
  await until(async () => JSON.stringify(await chips(a, yes)) === JSON.stringify({ "👍": [1, false] }), "carol's 👍 in the popup", 20000);
  await byId(a, cheers).waitFor({ timeout: 20000 });
  assert.equal(await byId(a, cheers).locator(".quote-author").textContent(), "You");
  assert.equal(await byId(a, cheers).locator(".quote-text").textContent(), "Bring drinks?");
  await until(async () => (await byId(a, late).locator(".msg-text").textContent().catch(() => "")) === "I might be late", "carol's edit in the popup", 20000);
  assert.equal(await byId(a, late).locator(".msg-edited").count(), 1);
  await byId(a, nope).locator(".deleted-text").waitFor({ timeout: 20000 });
  // What arrives in a chat the popup shows is read as it arrives: no unread count.
  await until(async () => (await snapshot()).chats.find((c) => c.handle === "carol")?.unread === 0, "carol's messages read as they arrive in the open chat");

  // ---- Search: the chat list finds a message in any chat; the result opens it, highlighted.
  await a.click("#back");
  await a.fill("#search", "umbrella");
  const hit = a.locator(`#message-results-list [data-result="${umbrella}"]`);
  await hit.waitFor({ timeout: 5000 });
  assert.equal(await hit.locator(".chat-name").textContent(), "Bob");
  assert.deepEqual(await hit.locator("mark").allTextContents(), ["umbrella"]);
  for (const scheme of ["light", "dark"]) await popupShot(a, "messaging-popup-search", scheme);
  await hit.locator(".chat-open").click();
  await until(async () => (await byId(a, umbrella).getAttribute("class"))?.includes("flash"), "the found message, highlighted");
  // In a chat: the header's search.
  await a.click("#chat-search");
  await a.fill("#chat-search-input", "lunch friday");
  const inChat = a.locator(`#chat-search-list [data-result="${lunch}"]`);
  await inChat.waitFor({ timeout: 5000 });
  assert.deepEqual(await inChat.locator("mark").allTextContents(), ["Lunch", "friday"]);
  await inChat.locator(".chat-open").click();
  assert.equal(await a.isVisible("#chat-search-results"), false);
  await until(async () => (await byId(a, lunch).getAttribute("class"))?.includes("flash"), "the found message, highlighted in its chat");
  // The phone's search, at phone size.
  await b.click("#back");
  await onScreen(b, "list");
  assert.equal(await b.locator('#chat-list [data-chat="alice"] .unread').count(), 0, "what arrived in the chat the phone showed is read");
  await b.fill("#search", "sushi");
  await b.locator(`#message-results-list [data-result="${sushi}"]`).waitFor({ timeout: 5000 });
  for (const scheme of ["light", "dark"]) await phoneShot(b, "messaging-app-search", scheme);

  // ---- Disappearing messages: 24 hours, from the chat's menu.
  await a.click("#chat-more");
  await a.click('#row-menu [data-action="disappear"]');
  await popupShot(a, "messaging-popup-timer-menu", "light");
  await a.click('#timer-menu [data-seconds="86400"]');
  await a.waitForSelector('#messages .event-line:has-text("You set messages to disappear after 24 hours")', { timeout: 10000 });
  await a.waitForSelector("#bar-timer:not([hidden])");
  assert.equal(await a.getAttribute("#bar-timer", "aria-label"), "Messages disappear after 24 hours");
  await popupShot(a, "messaging-popup-timer", "dark");

  // ---- A draft outlives the popup closing and the worker stopping.
  await a.fill("#composer", "half-written thought");
  await a.close();
  const blank = await ext.context.newPage();
  await stopWorkers(ext, blank);
  const a2 = await openPopup(ext);
  const row = a2.locator('#chat-list [data-chat="bob"]');
  await until(async () => (await row.locator(".chat-preview").textContent()) === "Draft: half-written thought", "“Draft: …” in the chat list", 20000);
  const accent = await a2.evaluate(() => {
    const probe = document.body.appendChild(Object.assign(document.createElement("span"), { style: "color: var(--accent)" }));
    const color = getComputedStyle(probe).color;
    probe.remove();
    return color;
  });
  const label = await a2.evaluate(() => getComputedStyle(/** @type {Element} */ (document.querySelector('#chat-list [data-chat="bob"] .draft-label'))).color);
  assert.equal(label, accent, "“Draft:” in the accent colour");
  await row.locator(".chat-open").click();
  await until(async () => (await a2.inputValue("#composer")) === "half-written thought", "the composer holds the draft again");

  // ---- Note to self: always in the context menu; a page sent there; "Message yourself".
  await a2.click("#back");
  await onScreenPopup(a2, "list");
  const tab = { id: -1, url: "https://example.org/recipe", title: "Crêpes recipe" };
  await ext.worker.evaluate(([i, t]) => globalThis.tether.menuClick(i, t), [{ menuItemId: "chat:alice", editable: false, pageUrl: tab.url, frameUrl: tab.url, selectionText: "250 g flour" }, tab]);
  const note = a2.locator('#chat-list [data-chat="alice"]');
  await note.waitFor({ timeout: 10000 });
  assert.equal(await note.locator(".chat-name").textContent(), "Note to self");
  assert.equal(await note.locator(".avatar.is-note").count(), 1, "the note to self's bookmark avatar");
  await a2.click("#new-chat");
  assert.equal(await a2.textContent("#note-to-self .new-group-label > span"), "Message yourself");
  await popupShot(a2, "messaging-popup-new-chat", "light");
  await a2.click("#note-to-self");
  await onScreenPopup(a2, "chat");
  assert.equal(await a2.textContent("#title"), "Note to self");
  await a2.waitForSelector('#messages .link-card:has-text("Crêpes recipe")', { timeout: 10000 });
  assert.equal(await a2.textContent("#messages .link-quote"), "250 g flour");
  await say(a2, "buy eggs");
  await popupShot(a2, "messaging-popup-note", "light");
  // ---- Mark as unread (the row menu): a dot; opening the chat clears it.
  await a2.click("#back");
  await onScreenPopup(a2, "list");
  await row.hover();
  const unreadBefore = (await snapshot()).unread;
  await row.locator(".row-more").click();
  assert.equal(await a2.textContent('#row-menu [data-action="unread"] .menu-text'), "Mark as unread");
  await a2.click('#row-menu [data-action="unread"]');
  // The row's buttons cover its flags while it has the pointer or the keyboard.
  await a2.mouse.move(190, 20);
  await a2.focus("#search");
  await row.locator(".unread.dot").waitFor({ timeout: 5000 });
  await until(async () => (await snapshot()).unread === unreadBefore + 1, "a chat marked unread counts one");
  for (const scheme of ["light", "dark"]) await popupShot(a2, "messaging-popup-list", scheme);
  await row.locator(".chat-open").click();
  await a2.click("#back");
  await row.locator(".unread.dot").waitFor({ state: "detached", timeout: 5000 });

  assert.deepEqual(errors(ext).filter((e) => !/Failed to load resource/.test(e.text)), [], "no console errors in the extension");
  assert.deepEqual(phone.logs.filter((l) => (l.type === "error" || l.type === "pageerror") && !/Failed to load resource/.test(l.text)), [], "no console errors on the phone");
  console.log(`messaging test: ${Date.now() - t0} ms`);
});
