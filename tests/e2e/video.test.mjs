// Video end to end: the built extension in Chromium, a real tether-server
// and the real `tether` CLI as alice (the primary) and bob. The video is
// made in the test browser itself (a canvas animation recorded by
// MediaRecorder as WebM: no video file in the repository). Sent from the
// popup, its bubble has a thumbnail and its length; bob's CLI sees a video
// with its dimensions and length, and downloads the same bytes. Sent back
// from the CLI (which makes no video thumbnails), the popup shows a dark
// frame with a play badge, downloads it on a click and plays it full size.
// Screenshots of the chat with both bubbles, light and dark. The same in
// the phone web app (which runs the same chat screens) at a phone's size.

import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import readline from "node:readline";
import { extensionInBobsChat, lastFile } from "./lib/files.mjs";
import { ARTIFACTS, errors, launch, linkByQr, openPopup, screenshot } from "./lib/extension.mjs";
import { aliceOnPhone, launchPhone } from "./lib/phone.mjs";
import { aliceAndBob, cliUser, startServer, until } from "./lib/tether.mjs";

const CLI_BIN = path.resolve(process.env.TETHER_CLI_BIN ?? "target/debug/tether");

let server, alice, bob, ext, scratch, listener, phone;

afterEach(async () => {
  if (process.env.TETHER_E2E_DEBUG && ext) console.log(ext.logs.map((l) => `${l.type}: ${l.text}`).join("\n"));
  listener?.kill("SIGTERM");
  await ext?.close();
  await phone?.close();
  await server?.stop();
  await alice?.cleanup();
  await bob?.cleanup();
  if (scratch) await rm(scratch, { recursive: true, force: true });
  ext = server = alice = bob = scratch = listener = phone = undefined;
});

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

/** A server, alice and bob, the extension linked to alice with bob's chat open. */
async function setUp() {
  let page;
  ({ server, alice, bob, ext, scratch, page } = await extensionInBobsChat("video"));
  return page;
}

/**
 * A WebM video of `ms` milliseconds, `width` × `height`, recorded in `page`
 * from a canvas animation (a ball crossing a sky over a field) by
 * MediaRecorder: its bytes.
 */
async function recordVideo(page, { width = 320, height = 240, ms = 2200 } = {}) {
  const b64 = await page.evaluate(async ({ width, height, ms }) => {
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
    const start = performance.now();
    const draw = () => {
      const t = (performance.now() - start) / ms;
      const sky = ctx.createLinearGradient(0, 0, 0, height);
      sky.addColorStop(0, "#3b6fd6");
      sky.addColorStop(1, "#f0a860");
      ctx.fillStyle = sky;
      ctx.fillRect(0, 0, width, height);
      ctx.fillStyle = "#2f7a3a";
      ctx.fillRect(0, height * 0.72, width, height * 0.28);
      ctx.fillStyle = "#ffd23f";
      ctx.beginPath();
      ctx.arc(width * (0.1 + 0.8 * t), height * (0.55 - 0.3 * Math.sin(Math.PI * t)), height * 0.09, 0, 2 * Math.PI);
      ctx.fill();
    };
    draw();
    const type = ["video/webm;codecs=vp9", "video/webm;codecs=vp8", "video/webm"].find((x) => MediaRecorder.isTypeSupported(x));
    const rec = new MediaRecorder(canvas.captureStream(30), { mimeType: type });
    const chunks = [];
    rec.ondataavailable = (e) => chunks.push(e.data);
    rec.start(250);
    const timer = setInterval(draw, 33);
    await new Promise((r) => setTimeout(r, ms));
    clearInterval(timer);
    const stopped = new Promise((r) => (rec.onstop = r));
    rec.stop();
    await stopped;
    const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  }, { width, height, ms });
  return Buffer.from(b64, "base64");
}

/** `tether listen --json` for `user`: resolves with the first message line that `match` accepts. */
function listenFor(user, match, timeout = 30000) {
  listener = spawn(CLI_BIN, ["--data", user.home, "listen", "--json"], { stdio: ["ignore", "pipe", "pipe"] });
  const child = listener;
  const seen = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`listen --json saw no such message: ${seen.join("\n")}`)), timeout);
    readline.createInterface({ input: child.stdout }).on("line", (line) => {
      seen.push(line);
      let v;
      try {
        v = JSON.parse(line);
      } catch {
        return;
      }
      if (match(v)) {
        clearTimeout(timer);
        resolve(v);
      }
    });
  });
}

test("a video recorded in the browser goes from the popup to the CLI with its thumbnail, size and length; the CLI's video plays in the popup", { timeout: 180000 }, async () => {
  const page = await setUp();
  const clip = await recordVideo(page);
  const file = path.join(scratch, "clip.webm");
  await writeFile(file, clip);
  console.log(`# recorded ${clip.length} bytes of WebM`);

  // 1. The popup sends it: a thumbnail in the draft, then in the bubble with its length.
  const heard = listenFor(bob, (v) => v.file?.mime_type?.startsWith("video/"));
  await page.setInputFiles("#file-input", file);
  await page.waitForSelector("#file-draft:not([hidden]) img.draft-thumb", { timeout: 15000 });
  await page.fill("#composer", "the ball");
  await page.click("#send");
  const mine = page.locator("#messages .msg.me .video-btn").last();
  await mine.waitFor({ timeout: 10000 });
  assert.match(await mine.locator("img.video-poster").getAttribute("src"), /^(data:image\/jpeg;base64,|blob:)/);
  assert.match(await mine.locator(".video-corner").textContent(), /^0:0[2-3]$/);
  assert.equal(await mine.locator(".video-play").count(), 1);
  await until(async () => ["sent", "delivered", "read"].includes(await page.locator("#messages .msg.me").last().getAttribute("data-status")), "the video sent", 30000);

  // 2. bob's CLI: a video with its dimensions and length, the same bytes.
  const json = await heard;
  listener.kill("SIGTERM");
  await new Promise((r) => listener.once("exit", r));
  console.log(`# bob's listen --json: ${JSON.stringify(json.file)}`);
  assert.equal(json.file.width, 320);
  assert.equal(json.file.height, 240);
  assert.ok(json.file.duration_ms >= 1800 && json.file.duration_ms <= 3000, `its length (${json.file.duration_ms} ms)`);
  assert.equal(json.file.size, clip.length);
  // `tether read`: "🎬 Video (46.4 KB)", the caption on the next line, then the id.
  const { id } = await lastFile(bob, "alice", /the ball/);
  const read = (await bob.run(["read", "alice"])).stdout;
  console.log(`# bob reads: ${read.match(/.*🎬.*/)?.[0].trim()}`);
  assert.match(read, /🎬 Video \(\d+(\.\d)? KB\)\n\s+the ball *\n\s+id [0-9a-f]{32}/);
  const got = path.join(scratch, "bob-got.webm");
  await bob.run(["download", id, "--out", got]);
  assert.equal(sha256(await readFile(got)), sha256(clip), "bob's copy is the popup's");

  // 3. bob sends it back (the CLI makes no video thumbnail): a dark frame with the play badge.
  await bob.run(["send-file", "alice", got, "--caption", "and back"]);
  const theirs = page.locator("#messages .msg.them .video-btn").last();
  await theirs.waitFor({ timeout: 30000 });
  assert.equal(await theirs.locator(".video-placeholder").count(), 1, "a placeholder, no thumbnail");
  assert.equal(await theirs.locator(".video-play").count(), 1);
  assert.equal(await theirs.getAttribute("data-state"), "remote", "not downloaded on its own");
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await theirs.getAttribute("data-state"), "remote", "still not downloaded without a click");
  await page.setViewportSize({ width: 380, height: 560 });
  await screenshot(page, "video-chat-light");

  // 4. A click downloads it and plays it full size, with Save.
  await theirs.click();
  const video = page.locator(".image-overlay video");
  await video.waitFor({ timeout: 30000 });
  assert.match(await video.getAttribute("src"), /^blob:/);
  await until(async () => video.evaluate((v) => v.readyState >= 2 || v.currentTime > 0), "the video plays", 10000);
  const played = await video.evaluate((v) => ({ readyState: v.readyState, width: v.videoWidth, height: v.videoHeight, duration: v.duration }));
  console.log(`# overlay video: ${JSON.stringify(played)}`);
  assert.equal(played.width, 320);
  assert.equal(await page.locator(".image-overlay .image-save").count(), 1);
  await screenshot(page, "video-open");
  await page.keyboard.press("Escape");
  await page.waitForSelector(".image-overlay", { state: "detached", timeout: 5000 });
  // Downloaded, it gets a poster and its length from its own frames.
  assert.equal(await theirs.getAttribute("data-state"), "ready");
  await theirs.locator("img.video-poster").waitFor({ timeout: 10000 });
  assert.match(await theirs.locator(".video-corner").textContent(), /^0:0[2-3]$/);

  // 5. Dark; then the chat list's preview.
  const dark = await openPopup(ext, { colorScheme: "dark" });
  await dark.setViewportSize({ width: 380, height: 560 });
  await dark.click('#chat-list [data-chat="bob"]');
  await dark.waitForSelector("#messages .msg.them .video-btn", { timeout: 10000 });
  await dark.waitForSelector("#messages .msg.me .video-btn img.video-poster", { timeout: 10000 });
  await screenshot(dark, "video-chat-dark");
  await dark.click("#back");
  assert.match(await dark.textContent('#chat-list [data-chat="bob"]'), /🎬 Video: and back/);
  assert.deepEqual(errors(ext).filter((l) => !/Failed to load resource/.test(l.text)), [], "no errors in the extension");
});

test("the phone web app sends a video with its thumbnail and length, and plays one from the CLI", { timeout: 180000 }, async () => {
  server = await startServer();
  bob = await cliUser();
  await bob.run(["register", "bob", "--server", server.url]);
  scratch = await mkdtemp(path.join(tmpdir(), "tether-video-"));
  phone = await launchPhone();
  const page = await phone.context.newPage();
  await aliceOnPhone(page, server, bob, "videos coming");
  const clip = await recordVideo(page, { width: 240, height: 320 }); // upright, as a phone films
  const file = path.join(scratch, "upright.webm");
  await writeFile(file, clip);
  const shot = async (name) => {
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
  };

  // 1. bob sends it (no thumbnail, no shape): a dark 16:9 frame with the play badge and the size.
  await bob.run(["send-file", "alice", file, "--caption", "from the terminal"]);
  const theirs = page.locator("#messages .msg.them .video-btn").last();
  await theirs.waitFor({ timeout: 30000 });
  assert.equal(await theirs.locator(".video-placeholder").count(), 1);
  const box = await theirs.locator(".video-placeholder").boundingBox();
  assert.ok(box && Math.abs(box.width / box.height - 16 / 9) < 0.05, `the placeholder is 16:9 (${box?.width}×${box?.height})`);
  assert.equal(await theirs.getAttribute("data-state"), "remote");

  // 2. The phone sends it: a thumbnail and its length; bob gets the same bytes, 240×320.
  await page.setInputFiles("#file-input", file);
  await page.waitForSelector("#file-draft:not([hidden]) img.draft-thumb", { timeout: 15000 });
  await page.fill("#composer", "from the phone");
  await page.click("#send");
  const mine = page.locator("#messages .msg.me .video-btn").last();
  await mine.waitFor({ timeout: 10000 });
  assert.match(await mine.locator("img.video-poster").getAttribute("src"), /^(data:image\/jpeg;base64,|blob:)/);
  assert.match(await mine.locator(".video-corner").textContent(), /^0:0[2-3]$/);
  await until(async () => ["sent", "delivered", "read"].includes(await page.locator("#messages .msg.me.kind-file").last().getAttribute("data-status")), "the phone's video sent", 30000);
  const { id } = await lastFile(bob, "alice", /from the phone/);
  const got = path.join(scratch, "bob-got.webm");
  await bob.run(["download", id, "--out", got]);
  assert.equal(sha256(await readFile(got)), sha256(clip), "bob's copy is the phone's");
  await page.locator("#messages .msg").last().scrollIntoViewIfNeeded();
  await shot("app-video-chat-light");
  await page.emulateMedia({ colorScheme: "dark" });
  await shot("app-video-chat-dark");
  await page.emulateMedia({ colorScheme: "light" });

  // 3. A tap on bob's video downloads it and plays it full size.
  await theirs.scrollIntoViewIfNeeded();
  await theirs.tap();
  const video = page.locator(".image-overlay video");
  await video.waitFor({ timeout: 30000 });
  assert.match(await video.getAttribute("src"), /^blob:/);
  await until(async () => video.evaluate((v) => v.readyState >= 2 || v.currentTime > 0), "the video plays", 10000);
  assert.equal(await video.evaluate((v) => v.videoHeight), 320);
  await shot("app-video-open");
  await page.keyboard.press("Escape");
  await page.waitForSelector(".image-overlay", { state: "detached", timeout: 5000 });
  // Downloaded, bob's video gets its own poster, upright.
  await theirs.locator("img.video-poster").waitFor({ timeout: 10000 });
  const poster = await theirs.locator("img.video-poster").boundingBox();
  assert.ok(poster && poster.height > poster.width, `the poster is upright (${poster?.width}×${poster?.height})`);
  await shot("app-video-chat-played");
  const errs = phone.logs.filter((l) => l.type === "error" || l.type === "pageerror");
  assert.deepEqual(errs.filter((l) => !/Failed to load resource/.test(l.text)), [], "no errors in the page");
});
