// Voice notes and right-click "Send image to…" (issue 11): the built
// extension in Chromium with a fake microphone (CHROMIUM_ARGS), a real
// tether-server and the real `tether` CLI as alice (primary) and bob.
// A note recorded in the recorder window reaches the CLI as an Opus file
// with its length and waveform; audio from the CLI plays in the popup; an
// image from the context menu goes as the image itself once its site is
// allowed, and as its link when it is not; screenshots of a chat with a
// voice note, a photo and a document, light and dark.

import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { png } from "./lib/png.mjs";
import { extensionInBobsChat, lastFile } from "./lib/files.mjs";
import { launch, linkByQr, openPopup, screenshot } from "./lib/extension.mjs";
import { aliceAndBob, startServer, until } from "./lib/tether.mjs";

let server, alice, bob, ext, scratch, web;

afterEach(async () => {
  if (process.env.TETHER_E2E_DEBUG && ext) console.log(ext.logs.map((l) => `${l.type}: ${l.text}`).join("\n"));
  web?.close();
  await ext?.close();
  await server?.stop();
  await alice?.cleanup();
  await bob?.cleanup();
  if (scratch) await rm(scratch, { recursive: true, force: true });
  ext = server = alice = bob = scratch = web = undefined;
});

/** A server, alice and bob, the extension linked to alice with bob's chat open. */
async function setUp() {
  let page;
  ({ server, alice, bob, ext, scratch, page } = await extensionInBobsChat("voice"));
  return page;
}

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");
const isOpusContainer = (b) => b.subarray(0, 4).equals(Buffer.from([0x1a, 0x45, 0xdf, 0xa3])) || b.subarray(0, 4).toString("latin1") === "OggS";

/** Records a voice note in the recorder window the mic button opens; resolves once the window sent it and closed. */
async function recordNote(page, ms) {
  const [rec] = await Promise.all([ext.context.waitForEvent("page", { timeout: 10000 }), page.click("#record")]);
  await rec.waitForSelector("#rec-send:not([disabled])", { timeout: 15000 });
  assert.match(await rec.textContent("#rec-title"), /Voice message to Bob/i);
  // The meter moves with the fake microphone's beeps, the timer counts.
  await until(async () => Number(await rec.getAttribute("#rec-meter", "aria-valuenow")) > 0, "the level meter moves", 10000);
  await new Promise((r) => setTimeout(r, ms));
  assert.match(await rec.textContent("#rec-time"), /^0:0[1-9]$/);
  await screenshot(rec, "voice-recorder");
  const closed = rec.waitForEvent("close", { timeout: 20000 });
  await rec.click("#rec-send");
  await closed;
}

test("a voice note recorded with the fake microphone reaches the CLI as an Opus recording with its length and waveform", { timeout: 120000 }, async () => {
  const page = await setUp();
  await recordNote(page, 2600);
  // In the chat: a voice bubble with bars and its length, sent.
  const note = page.locator("#messages .msg.me .voice").last();
  await note.waitFor({ timeout: 15000 });
  assert.ok((await note.locator(".voice-bar").count()) >= 16, "the waveform's bars");
  // At least the 2.6 s recorded (more on a slow machine: the recorder
  // starts before its meter moves and stops when Send is handled).
  const length = await note.locator(".voice-time").textContent();
  assert.match(length, /^0:0[3-9]$/);
  await until(async () => ["sent", "delivered", "read"].includes(await page.locator("#messages .msg").last().getAttribute("data-status")), "the note sent", 30000);
  // The CLI: an audio file with a waveform (the engine's preview says so)
  // of the length the bubble shows, a real recording.
  const { id, line } = await lastFile(bob, "alice", new RegExp(`🎤 Voice message ${length}(?!\\d)`));
  console.log(`# bob reads: ${line.trim()}`);
  const out = path.join(scratch, "note.bin");
  await bob.run(["download", id, "--out", out]);
  const bytes = await readFile(out);
  assert.ok(bytes.length > 3000, `a recording of some size (${bytes.length} bytes)`);
  assert.ok(isOpusContainer(bytes), "starts with the WebM or Ogg magic");
  // It plays in the popup from the cache (the sent file stays there).
  await note.locator(".voice-play").click();
  await until(async () => (await note.locator(".voice-play").getAttribute("data-playing")) === "true", "the note plays", 5000);
  await until(async () => (await note.locator(".voice-bar.played").count()) > 0, "the bars fill as it plays", 5000);
});

test("audio sent from the CLI (no waveform) plays in the popup, with its name and a seekable track", { timeout: 120000 }, async () => {
  const page = await setUp();
  // A real Opus recording to send, made by Chromium from its fake microphone.
  const maker = await ext.context.newPage();
  await maker.goto(`chrome-extension://${ext.id}/popup/grant.html`);
  const made = await maker.evaluate(async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const type = ["audio/ogg;codecs=opus", "audio/webm;codecs=opus"].find((t) => MediaRecorder.isTypeSupported(t));
    const rec = new MediaRecorder(stream, { mimeType: type });
    const chunks = [];
    rec.ondataavailable = (e) => chunks.push(e.data);
    rec.start();
    await new Promise((r) => setTimeout(r, 2000));
    const stopped = new Promise((r) => (rec.onstop = r));
    rec.stop();
    await stopped;
    stream.getTracks().forEach((t) => t.stop());
    const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
    let s = "";
    for (const b of bytes) s += String.fromCharCode(b);
    return { type, b64: btoa(s) };
  });
  await maker.close();
  const file = path.join(scratch, made.type.startsWith("audio/ogg") ? "talk.ogg" : "talk.weba");
  await writeFile(file, Buffer.from(made.b64, "base64"));
  await bob.run(["send-file", "alice", file]);
  const audio = page.locator("#messages .msg.them .voice.audio").last();
  await audio.waitFor({ timeout: 30000 });
  assert.match(await audio.locator(".audio-name").textContent(), /talk\.(ogg|weba)/);
  assert.equal(await audio.locator(".voice-bar").count(), 0, "no waveform: a plain track");
  await until(async () => (await audio.getAttribute("data-ready")) === "true", "the audio downloaded", 30000);
  await audio.locator(".voice-play").click();
  await until(async () => (await audio.locator(".voice-play").getAttribute("data-playing")) === "true", "it plays", 5000);
  const filled = () => audio.locator(".voice-track-fill").evaluate((e) => parseFloat(e.style.width) || 0);
  await until(async () => (await filled()) > 0, "the track fills", 5000);
  // Scrubbing: a click near the end of the track moves there.
  const box = await audio.locator(".voice-wave").boundingBox();
  await page.mouse.click(box.x + box.width * 0.9, box.y + box.height / 2);
  const width = await filled();
  assert.ok(width >= 80, `scrubbed to ${width}%`);
  await until(async () => (await audio.locator(".voice-play").getAttribute("data-playing")) === "false", "it ends", 10000);
});

/** A web page with an image, on 127.0.0.1 (its origin is reachable as `localhost` too: a second site). */
async function imageSite(image) {
  web = createServer((req, res) => {
    if (req.url === "/page.html") {
      res.writeHead(200, { "Content-Type": "text/html" });
      return res.end('<!doctype html><title>Gallery</title><img src="/sunset.png">');
    }
    if (req.url === "/sunset.png" || req.url === "/open/sunset.png") {
      const cors = req.url.startsWith("/open/") ? { "Access-Control-Allow-Origin": "*" } : {};
      res.writeHead(200, { "Content-Type": "image/png", ...cors });
      return res.end(image);
    }
    res.writeHead(404).end();
  });
  await new Promise((r) => web.listen(0, "127.0.0.1", r));
  return web.address().port;
}

test("right-click an image: the image itself (same SHA-256 at the CLI); a site that must be allowed asks first; refused, its link", { timeout: 120000 }, async () => {
  const page = await setUp();
  const image = png(300, 200);
  const port = await imageSite(image);
  const base = `http://127.0.0.1:${port}`;
  const tab = await ext.context.newPage();
  await tab.goto(`${base}/page.html`);
  const click = (srcUrl) =>
    ext.worker.evaluate((i) => globalThis.tether.menuClick(i, { id: -1, url: i.pageUrl, title: "Gallery" }), { menuItemId: "chat:bob", editable: false, mediaType: "image", srcUrl, pageUrl: `${base}/page.html` });

  // 1. A site that serves its images to any origin (CORS): the image itself, no permission needed.
  let outcome = await click(`${base}/open/sunset.png`);
  assert.equal(outcome.sent, "image");
  const photo = await lastFile(bob, "alice", /📷/);
  const out = path.join(scratch, "got.png");
  await bob.run(["download", photo.id, "--out", out]);
  assert.equal(sha256(await readFile(out)), sha256(image), "the PNG's own bytes");
  await page.waitForSelector("#messages .msg.me .file-image", { timeout: 10000 });

  // 2. A site that does not: a window asks first (the browser's own prompt
  // behind "Allow and send" cannot be answered in headless Chromium).
  let ask;
  [ask, outcome] = await Promise.all([ext.context.waitForEvent("page", { timeout: 10000 }), click(`${base}/sunset.png`)]);
  assert.deepEqual(outcome, { sent: "asking" });
  await ask.waitForSelector("#grant-allow");
  assert.match(await ask.textContent("#grant-text"), /read images from 127\.0\.0\.1/);
  await ask.setViewportSize({ width: 420, height: 260 });
  await screenshot(ask, "image-permission-window");
  await ask.close();

  // 3. Another site (localhost), refused: the link goes, as before, and the window says so.
  const other = `http://localhost:${port}/sunset.png`;
  [ask, outcome] = await Promise.all([ext.context.waitForEvent("page", { timeout: 10000 }), click(other)]);
  assert.deepEqual(outcome, { sent: "asking" });
  await ask.click("#grant-link");
  await ask.waitForSelector("#grant-status:text('Sent the image')", { timeout: 10000 });
  const got = await until(async () => {
    const text = (await bob.run(["read", "alice"])).stdout;
    return text.includes(other) && text;
  }, "bob gets the link");
  assert.match(got, new RegExp(`Gallery <${other.replace(/[.?]/g, "\\$&")}>`));

});

test("a chat with a voice note, a photo and a document, light and dark", { timeout: 150000 }, async () => {
  const page = await setUp();
  const photo = path.join(scratch, "harbour.png");
  await writeFile(photo, png(640, 420));
  await bob.run(["send-file", "alice", photo, "--caption", "Harbour at 7"]);
  await until(async () => (await page.locator("#messages .msg.them .file-image").last().getAttribute("src").catch(() => null))?.startsWith("blob:"), "the photo shown", 30000);
  await recordNote(page, 1800);
  await page.locator("#messages .msg.me .voice").last().waitFor({ timeout: 15000 });
  const doc = path.join(scratch, "Boarding pass.pdf");
  await writeFile(doc, Buffer.concat([Buffer.from("%PDF-1.4\n"), Buffer.alloc(96 * 1024, 7)]));
  await page.setInputFiles("#file-input", doc);
  await page.waitForSelector("#file-draft .file-name", { timeout: 10000 });
  await page.click("#send");
  const docMsg = page.locator("#messages .msg.me", { has: page.locator(".file-card") }).last();
  await until(async () => ["sent", "delivered", "read"].includes(await docMsg.getAttribute("data-status")) && (await page.locator("#messages .file-progress").count()) === 0, "the document sent, no progress bar left", 30000);
  await page.setViewportSize({ width: 380, height: 560 });
  // Opened at its end, the chat stays there while the bubbles fill in.
  const at = await page.evaluate(() => { const b = document.getElementById("messages"); return [b.scrollTop, b.scrollHeight, b.clientHeight, b.dataset.pinned]; });
  assert.ok(at[1] - at[0] - at[2] < 2, `the chat shows its last message (scrollTop, scrollHeight, clientHeight, pinned: ${at})`);
  await screenshot(page, "media-chat-light");
  const dark = await openPopup(ext, { colorScheme: "dark" });
  await dark.setViewportSize({ width: 380, height: 560 });
  await dark.click('#chat-list [data-chat="bob"]');
  await dark.waitForSelector("#messages .msg.me .voice", { timeout: 10000 });
  await until(async () => (await dark.locator("#messages .msg.them .file-image").last().getAttribute("src"))?.startsWith("blob:"), "the photo shown", 10000);
  await screenshot(dark, "media-chat-dark");
  // The three kinds side by side: a photo with its caption, a voice note with bars, a document card.
  assert.equal(await dark.locator("#messages .msg .voice").count(), 1);
  assert.match(await dark.textContent("#messages"), /Harbour at 7/);
  assert.match(await dark.textContent("#messages"), /Boarding pass\.pdf/);
});
