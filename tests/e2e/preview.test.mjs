// Link previews made by the sender (issue 13), end to end: alice's browser
// (the extension, linked to her CLI primary) shares a page served by this
// test on 127.0.0.1; bob gets it on his CLI primary and in his own browser
// (a second Chromium with the extension, linked to bob). The preview is
// read from alice's tab on her gesture and travels in the message: the
// page's server sees no request from anyone after the share.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import path from "node:path";
import readline from "node:readline";
import { clickToolbarButton, errors, launch, linkByQr, openPopup, screenshot } from "./lib/extension.mjs";
import { png } from "./lib/png.mjs";
import { aliceAndBob, startServer, until } from "./lib/tether.mjs";

const CLI_BIN = path.resolve(process.env.TETHER_CLI_BIN ?? "target/debug/tether");

const TITLE = "Lighthouses of the Breton coast";
const DESCRIPTION = "Twenty-three towers between Brest and Saint-Malo, their keepers, and the storms they have seen since 1860: a walk along the coast at dawn, from the Phare du Créac'h to the Sillon.";
const SITE = "The Coastal Review";

let server, alice, bob, extA, extB, site, listen;

/**
 * The shared site: an article with Open Graph tags and a cover image, a
 * page whose image never comes, one whose image is on another origin that
 * does not share it (CORS), and a log of every request it gets.
 */
async function startSite() {
  /** @type {{ at: number, url: string }[]} */
  const log = [];
  const cover = png(600, 315);
  /** Each page's og:title, og:description and og:image. */
  const pages = {
    "/story.html": [TITLE, DESCRIPTION, "cover.png"],
    "/slow.html": ["A page with a slow picture", "Its picture never arrives.", "/never.png"],
    "/elsewhere.html": ["A picture kept elsewhere", "Its picture is on a site that keeps it to itself.", () => `http://localhost:${port}/cover.png`],
  };
  const web = createServer((req, res) => {
    log.push({ at: Date.now(), url: req.url ?? "" });
    if (req.url === "/cover.png") return res.writeHead(200, { "content-type": "image/png" }).end(cover);
    if (req.url === "/never.png") return; // the image that never comes
    const [title, description, image] = pages[req.url] ?? pages["/story.html"];
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(`<!doctype html>
<title>${TITLE} | ${SITE}</title>
<meta property="og:title" content="${title}">
<meta property="og:description" content="${description}">
<meta property="og:site_name" content="${SITE}">
<meta property="og:image" content="${typeof image === "function" ? image() : image}">
<body style="margin:0;font:18px/1.5 sans-serif">
<header style="background:#0b5d7a;color:#fff;padding:28px 32px"><small>${SITE}</small><h1 style="margin:4px 0 0">${title}</h1></header>
<p style="padding:0 32px">${description}</p>`);
  });
  await new Promise((r) => web.listen(0, "127.0.0.1", r));
  const port = web.address().port;
  return { base: `http://127.0.0.1:${port}`, log, close: () => (web.closeAllConnections(), web.close()) };
}

/** `tether listen --json` for bob: every message as it arrives. */
function listenJson(user) {
  const child = spawn(CLI_BIN, ["--data", user.home, "listen", "--json"], { stdio: ["ignore", "pipe", "ignore"] });
  const messages = [];
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    const v = JSON.parse(line);
    if (v.event === "message") messages.push(v);
  });
  return { messages, stop: () => child.kill("SIGTERM") };
}

before(async () => {
  server = await startServer();
  ({ alice, bob } = await aliceAndBob(server));
  await alice.run(["send", "bob", "look at this later"]);
  await bob.run(["send", "alice", "send me what you find"]);
  [extA, extB, site] = await Promise.all([launch({ toolbar: true }), launch(), startSite()]);
  // One after the other: both at once, on a loaded machine, once ended in `tether link` failing with "no prekeys left".
  await linkByQr(extA, server, alice, "alice", "preview-link-alice");
  await linkByQr(extB, server, bob, "bob", "preview-link-bob");
  listen = listenJson(bob);
});

after(async () => {
  listen?.stop();
  site?.close();
  await extA?.close();
  await extB?.close();
  await server?.stop();
  await alice?.cleanup();
  await bob?.cleanup();
});

/** Opens `url` in a tab of alice's browser; returns the page and the tab as a menu click passes it. */
async function openTab(url) {
  const page = await extA.context.newPage();
  await page.goto(url);
  await page.bringToFront();
  const id = await extA.worker.evaluate(async () => (await chrome.tabs.query({ active: true, lastFocusedWindow: true }))[0]?.id);
  return { page, tab: { id, url, title: await page.title() } };
}

/** "Send to Tether › Bob" on the page, through the worker's real click handler; resolves once sent. Returns how long it took. */
async function shareToBob(tab) {
  const start = Date.now();
  await extA.worker.evaluate(([i, t]) => globalThis.tether.menuClick(i, t), [{ menuItemId: "chat:bob", editable: false, pageUrl: tab.url, frameUrl: tab.url }, tab]);
  return Date.now() - start;
}

/** The link bob's CLI got for `url` (the first that passes `also`). */
const cliGot = (url, what, also = () => true) => until(() => listen.messages.find((m) => m.kind === "link" && m.url === url && !m.from_me && also(m)), what, 20000);

test("a shared page's preview comes from the sender's tab; recipients show it and never fetch the page", { timeout: 60000 }, async () => {
  const story = `${site.base}/story.html`;
  const { page, tab } = await openTab(story);

  // 1. No gesture on this tab yet, so no access to it: the link goes, without a preview.
  await shareToBob(tab);
  const bare = await cliGot(story, "the link without a preview");
  assert.equal(bare.title, `${TITLE} | ${SITE}`, "the tab's title");
  assert.equal(bare.preview, undefined, "no preview without the user's gesture on the tab");
  assert.deepEqual(site.log.map((r) => r.url).filter((u) => u !== "/favicon.ico"), ["/story.html"], "nothing read from the site");

  // 2. The user's gesture (the toolbar button here; the context menu gives
  // the same activeTab grant) on a page whose picture never comes: the
  // share waits no longer than the preview's budget (1.5 s) and goes with
  // the texts.
  const slowUrl = `${site.base}/slow.html`;
  const slow = await openTab(slowUrl);
  await clickToolbarButton(extA, slow.page);
  const waited = await shareToBob(slow.tab);
  assert.ok(waited < 3000, `the share waited ${waited} ms`);
  const texts = await cliGot(slowUrl, "the link with the texts of its preview");
  assert.deepEqual(texts.preview, { description: "Its picture never arrives.", site_name: SITE, has_image: false });

  // An image on another origin that does not serve it to others: the top
  // of the tab, as it is on screen, stands in for it.
  const elsewhereUrl = `${site.base}/elsewhere.html`;
  const elsewhere = await openTab(elsewhereUrl);
  await clickToolbarButton(extA, elsewhere.page);
  await shareToBob(elsewhere.tab);
  const shot = await cliGot(elsewhereUrl, "the link with the tab's top as its picture");
  assert.deepEqual(shot.preview, { description: "Its picture is on a site that keeps it to itself.", site_name: SITE, has_image: true });

  // 3. The gesture on the article's tab: title, description, site name and
  // picture, read and made by alice's browser.
  await page.bringToFront();
  await clickToolbarButton(extA, page);
  const took = await shareToBob(tab);
  assert.ok(took < 3000, `the share waited ${took} ms for its preview`);
  const sentAt = site.log.length;
  assert.ok(site.log.some((r) => r.url === "/cover.png"), "the sender's browser fetched the og:image");
  const got = await cliGot(story, "bob's CLI gets the link with its preview", (m) => !!m.preview);
  assert.equal(got.title, TITLE, "og:title");
  assert.deepEqual(got.preview, { description: DESCRIPTION, site_name: SITE, has_image: true });

  // 4. Bob's browser shows the card: the picture from the message (a data: URL).
  const popup = await openPopup(extB);
  await popup.setViewportSize({ width: 380, height: 560 });
  await popup.click('#chat-list [data-chat="alice"] .chat-open');
  const card = popup.locator("#messages .msg.them .link-card.with-image").last();
  await card.waitFor({ timeout: 15000 });
  const img = card.locator("img.link-image");
  assert.match(await img.getAttribute("src"), /^data:image\/jpeg;base64,/);
  await until(() => img.evaluate((el) => el.complete && el.naturalWidth > 0), "the picture decoded");
  const size = await img.evaluate((el) => [el.naturalWidth, el.naturalHeight]);
  assert.ok(size[0] <= 320 && size[1] <= 320 && size[0] > 100, `a thumbnail of at most 320 × 320 (${size})`);
  assert.equal(await card.locator(".link-title").textContent(), TITLE);
  assert.equal(await card.locator(".link-desc").textContent(), DESCRIPTION);
  assert.equal(await card.locator(".link-url").textContent(), `${SITE} · ${new URL(story).host}`);
  assert.equal(await card.getAttribute("href"), story, "a click opens the page");
  assert.equal(await popup.locator("#messages .msg.them .link-card:not(.with-image) .link-desc").textContent(), "Its picture never arrives.");
  assert.equal(await popup.locator("#messages .msg.them .link-card.with-image").count(), 2, "the tab's top and the og:image");
  // The chat opens at its first unread message; the article's card is the last.
  await card.scrollIntoViewIfNeeded();
  await screenshot(popup, "preview-chat-light");
  await popup.emulateMedia({ colorScheme: "dark" });
  await screenshot(popup, "preview-chat-dark");
  assert.deepEqual(site.log.slice(sentAt), [], "no request to the shared site from bob's browser");

  // 5. "Choose chat…": the preview is made at the click and goes once a
  // chat is picked; alice's own copy shows it from the message too.
  await extA.worker.evaluate(([i, t]) => globalThis.tether.menuClick(i, t).catch(() => {}), [{ menuItemId: "tether-choose", editable: false, pageUrl: tab.url, frameUrl: tab.url }, tab]);
  const picker = await openPopup(extA);
  await picker.click('#chat-list [data-chat="bob"] .chat-open');
  listen.messages.length = 0;
  await picker.click("#share-send");
  const chosen = await cliGot(story, "the chosen chat gets the link with its preview");
  assert.deepEqual([chosen.title, chosen.preview], [TITLE, { description: DESCRIPTION, site_name: SITE, has_image: true }]);
  const chosenAt = site.log.length;
  const own = picker.locator("#messages .msg.me .link-card.with-image img.link-image");
  await until(async () => (await own.count()) === 3 && (await own.last().evaluate((el) => el.complete && el.naturalWidth > 0)), "alice's own three cards with pictures");
  assert.deepEqual(site.log.slice(chosenAt), [], "no request to the shared site from alice's popup");

  assert.deepEqual(errors(extA), []);
  assert.deepEqual(errors(extB), []);
});
