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
import { deflateSync } from "node:zlib";
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
  server = await startServer();
  ({ alice, bob } = await aliceAndBob(server));
  await alice.run(["send", "bob", "hello bob"]);
  ext = await launch();
  scratch = await mkdtemp(path.join(tmpdir(), "tether-voice-"));
  const page = await linkByQr(ext, server, alice, "alice", "voice-link-qr");
  await page.waitForSelector('#chat-list [data-chat="bob"]', { timeout: 15000 });
  await page.click('#chat-list [data-chat="bob"]');
  await page.waitForSelector("#composer", { state: "visible" });
  return page;
}

/** The newest file message `user` got from `from`: its line in `tether read` and its id. */
async function lastFile(user, from, pattern) {
  return until(async () => {
    const lines = (await user.run(["read", from])).stdout.split("\n");
    for (let i = lines.length - 1; i > 0; i--) {
      const m = lines[i].match(/^\s+id ([0-9a-f]{32})/);
      if (m && pattern.test(lines[i - 1])) return { id: m[1], line: lines[i - 1] };
    }
    if (process.env.TETHER_E2E_DEBUG) console.log(lines.join("\n"));
    return null;
  }, `a file from ${from} matching ${pattern}`, 30000);
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
  assert.match(await note.locator(".voice-time").textContent(), /^0:0[2-4]$/);
  await until(async () => ["sent", "delivered", "read"].includes(await page.locator("#messages .msg").last().getAttribute("data-status")), "the note sent", 30000);
  // The CLI: an audio file with a waveform (the engine's preview says so), a real recording.
  const { id, line } = await lastFile(bob, "alice", /🎤 Voice message 0:0[2-4]/);
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

/** A small PNG (a colour gradient) without an image library. */
function png(width, height) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = y * (width * 3 + 1) + 1 + x * 3;
      raw[o] = Math.round((255 * x) / width);
      raw[o + 1] = Math.round(120 + (100 * y) / height);
      raw[o + 2] = Math.round(255 - (200 * x) / width);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

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
