// Files in the phone web app end to end (issue 11): the real built web
// app, served by a real tether-server, in Chromium at a phone's size (the
// account's primary, alice), and the real `tether` CLI as the contact
// (bob). The phone sends a photo and a document, which bob downloads with
// the same SHA-256; bob sends a photo and a document, which the phone
// shows and saves with the same SHA-256; a file over 64 MB and one over
// the account's quota are refused in words. Screenshots of the chat with
// a photo and a document, light and dark, go to the artifacts.

import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { PNG } from "pngjs";
import { assertRefusals } from "./lib/files.mjs";
import { ARTIFACTS } from "./lib/extension.mjs";
import { cliUser, startServer, until } from "./lib/tether.mjs";
import { aliceOnPhone, launchPhone, scratch } from "./lib/phone.mjs";

const MB = 1024 * 1024;
const MARKER = "TETHER-PLAINTEXT-MARKER-app-5c1e";

let server, bob, phone, tmp;

afterEach(async () => {
  if (process.env.TETHER_E2E_DEBUG && phone) console.log(phone.logs.map((l) => `${l.type}: ${l.text}`).join("\n"));
  await phone?.close();
  await server?.stop();
  await bob?.cleanup();
  await tmp?.cleanup();
  phone = server = bob = tmp = undefined;
});

const sha256 = async (file) => createHash("sha256").update(await readFile(file)).digest("hex");

/** A PNG photo: a colour gradient with a sun, `width` × `height`. */
function photo(width, height) {
  const img = new PNG({ width, height });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      const sun = (x - width * 0.7) ** 2 + (y - height * 0.35) ** 2 < (height * 0.12) ** 2;
      img.data[i] = sun ? 255 : Math.round(255 * (y / height));
      img.data[i + 1] = sun ? 214 : Math.round(90 + 80 * (x / width));
      img.data[i + 2] = sun ? 90 : Math.round(200 - 120 * (y / height));
      img.data[i + 3] = 255;
    }
  }
  return PNG.sync.write(img);
}

/** A document-like file: a PDF header, the plaintext marker, random bytes. */
const pdf = (size) => Buffer.concat([Buffer.from(`%PDF-1.4\n% ${MARKER}\n`), randomBytes(size)]);

/** A screenshot of the phone at its size, into the test artifacts. */
async function phoneShot(page, name) {
  await mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

async function dump(page) {
  console.log("DBG", await lastMessage(page).evaluate((el) => el.outerHTML.slice(0, 600)));
  console.log("DBG", server.log.filter((l) => !/registered|listening|server key|policy/.test(l)).join("\n"));
}

/** The phone's bubble of the newest message. */
const lastMessage = (page) => page.locator("#messages .msg").last();
/** The phone's bubble of the newest file it sent. */
const lastSentFile = (page) => page.locator("#messages .msg.me.kind-file").last();

/** Waits until the newest file the phone sent is on the server (sent, delivered or read). */
async function fileSent(page, what) {
  await page.waitForSelector("#messages .msg.me.kind-file", { timeout: 10000 });
  await until(async () => ["sent", "delivered", "read"].includes(await lastSentFile(page).getAttribute("data-status")), what, 30000).catch(async (e) => {
    if (process.env.TETHER_E2E_DEBUG) await dump(page);
    throw e;
  });
}

/** Sends `file` from the phone's composer with `caption`; waits until the server has it. */
async function sendFromPhone(page, file, caption) {
  await page.setInputFiles("#file-input", file);
  await page.waitForSelector("#file-draft:not([hidden]) .file-name", { timeout: 10000 });
  await page.waitForSelector("#send:not([disabled])", { timeout: 10000 });
  await page.fill("#composer", caption);
  await page.click("#send");
  await fileSent(page, `${path.basename(file)} sent`);
}

/** The ids of the file messages bob has from alice, oldest first, once there are `n`. */
async function bobsFiles(n) {
  return until(async () => {
    const out = (await bob.run(["read", "alice"], { allowFail: true })).stdout;
    const ids = [...out.matchAll(/^\s+id ([0-9a-f]{32})/gm)].map((m) => m[1]);
    return ids.length >= n && ids;
  }, `bob has ${n} files`, 30000);
}

test("the phone sends and saves photos and documents; refusals in words; light and dark", { timeout: 240000 }, async () => {
  server = await startServer({ args: ["--blob-quota", String(4 * MB)] });
  bob = await cliUser();
  await bob.run(["register", "bob", "--server", server.url]);
  tmp = await scratch();
  phone = await launchPhone();
  const page = await phone.context.newPage();
  if (process.env.TETHER_E2E_DEBUG) {
    page.on("response", async (r) => r.url().includes("/v1/blobs") && console.log("HTTP", r.request().method(), r.status(), r.url(), await r.text().catch(() => "")));
    page.on("console", (m) => console.log("CONSOLE", m.type(), m.text()));
    page.on("requestfailed", (r) => console.log("HTTP failed", r.method(), r.url(), r.failure()?.errorText));
  }
  await aliceOnPhone(page, server, bob);

  // 1. The phone sends a photo (the picker is the composer's) and a document.
  const beach = tmp.file("beach.png");
  await writeFile(beach, photo(1200, 800));
  await page.setInputFiles("#file-input", beach);
  await page.waitForSelector("#file-draft:not([hidden]) img.draft-thumb", { timeout: 10000 });
  await page.fill("#composer", "The beach this morning");
  await phoneShot(page, "app-files-preview-light");
  await page.click("#send");
  await fileSent(page, "the photo sent");
  await until(async () => (await lastSentFile(page).locator(".file-image").getAttribute("src"))?.startsWith("blob:"), "the sent photo shown from this phone", 10000);
  const notes = tmp.file("Meeting notes.pdf");
  await writeFile(notes, pdf(300 * 1024));
  await sendFromPhone(page, notes, "notes from Tuesday");
  const ids = await bobsFiles(2);
  for (const [i, file] of [beach, notes].entries()) {
    const out = tmp.file(`bob-${i}`);
    await bob.run(["download", ids[i], "--out", out]);
    assert.equal(await sha256(out), await sha256(file), `bob's ${path.basename(file)} is the phone's`);
  }

  // 2. bob sends a photo and a document: the photo shows inline, the
  // document as a card; the phone saves both with the same bytes.
  const garden = tmp.file("garden.png");
  await writeFile(garden, photo(800, 1000));
  await bob.run(["send-file", "alice", garden, "--caption", "Our garden"]);
  const invoice = tmp.file("Invoice-2026-11.pdf");
  await writeFile(invoice, pdf(180 * 1024));
  await bob.run(["send-file", "alice", invoice]);
  const card = page.locator("#messages .msg.them .file-card").last();
  await card.waitFor({ timeout: 30000 });
  assert.match(await card.textContent(), /Invoice-2026-11\.pdf/);
  const image = page.locator("#messages .msg.them .file-image").last();
  await until(async () => (await image.getAttribute("src"))?.startsWith("blob:"), "bob's photo downloaded and shown", 30000);
  let download = page.waitForEvent("download", { timeout: 30000 });
  await card.tap();
  let saved = tmp.file("phone-invoice.pdf");
  await (await download).saveAs(saved);
  assert.equal(await sha256(saved), await sha256(invoice), "the phone saves bob's document intact");
  // Tap the photo: full size over the chat, with Save.
  await page.locator("#messages .msg.them .file-image-btn").last().tap();
  await page.waitForSelector(".image-overlay img", { timeout: 5000 });
  await phoneShot(page, "app-files-photo-open");
  download = page.waitForEvent("download", { timeout: 30000 });
  await page.click(".image-overlay .image-save");
  saved = tmp.file("phone-garden.png");
  await (await download).saveAs(saved);
  assert.equal(await sha256(saved), await sha256(garden), "the phone saves bob's photo intact");
  await page.keyboard.press("Escape");
  await page.waitForSelector(".image-overlay", { state: "detached", timeout: 5000 });

  // 3. The chat with photos and documents, light and dark.
  await page.locator("#messages .msg").last().scrollIntoViewIfNeeded();
  await phoneShot(page, "app-files-chat-light");
  await page.emulateMedia({ colorScheme: "dark" });
  await phoneShot(page, "app-files-chat-dark");
  await page.emulateMedia({ colorScheme: "light" });

  // 4. Refusals in words: over 64 MB before any upload; over the account's
  // quota from the server, with Retry.
  const huge = tmp.file("huge.bin");
  await writeFile(huge, Buffer.alloc(65 * MB, 7));
  const big = tmp.file("video.bin");
  await writeFile(big, randomBytes(6 * MB));
  await assertRefusals(page, huge, big);
  await phoneShot(page, "app-files-refused-light");

  const errors = phone.logs.filter((l) => l.type === "error" || l.type === "pageerror");
  assert.deepEqual(errors.filter((l) => !/Failed to load resource/.test(l.text)), [], "no errors in the page");
});
