// The phone in the end-to-end tests: a second Chromium at a phone's size
// whose camera is a video file (Chromium's fake capture device) made from
// real pixels — a screenshot of the popup's QR code.

import { chromium } from "playwright-core";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { PNG } from "pngjs";
import { CHROMIUM_ARGS } from "./extension.mjs";
import { until } from "./tether.mjs";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** The phone's screen (an iPhone 14's CSS pixels). */
export const PHONE = { width: 390, height: 844 };

/** The fake camera's frame size. */
const CAMERA = { width: 640, height: 480 };

/**
 * Turns a PNG screenshot into a YUV4MPEG2 (.y4m) video that Chromium plays
 * as its camera: the picture centred on a grey frame, enlarged by the
 * largest whole factor that fits (each pixel becomes a square block, as
 * when the phone is held closer; nothing is interpolated), a few identical
 * frames at 10 fps, 4:2:0 with neutral chroma (the QR is black on white).
 * @param {string} png path of the screenshot
 * @param {string} y4m path to write
 */
export async function cameraFrom(png, y4m) {
  const img = PNG.sync.read(await readFile(png));
  const { width: W, height: H } = CAMERA;
  if (img.width > W || img.height > H) throw new Error(`the picture (${img.width}×${img.height}) is larger than the camera frame`);
  const k = Math.max(1, Math.min(Math.floor(W / img.width), Math.floor(H / img.height)));
  const luma = Buffer.alloc(W * H, 110);
  const ox = Math.floor((W - img.width * k) / 2);
  const oy = Math.floor((H - img.height * k) / 2);
  for (let y = 0; y < img.height * k; y++) {
    for (let x = 0; x < img.width * k; x++) {
      const i = (Math.floor(y / k) * img.width + Math.floor(x / k)) * 4;
      // BT.601 luma, full range (C420jpeg).
      luma[(oy + y) * W + ox + x] = Math.round(0.299 * img.data[i] + 0.587 * img.data[i + 1] + 0.114 * img.data[i + 2]);
    }
  }
  const chroma = Buffer.alloc((W / 2) * (H / 2) * 2, 128);
  const frame = Buffer.concat([Buffer.from("FRAME\n"), luma, chroma]);
  const header = Buffer.from(`YUV4MPEG2 W${W} H${H} F10:1 Ip A1:1 C420jpeg\n`);
  await writeFile(y4m, Buffer.concat([header, ...Array(10).fill(frame)]));
  return y4m;
}

/**
 * Starts the phone: Chromium with `camera` (a .y4m file, or none) as its
 * camera, camera permission granted, a phone-sized touch viewport. Its
 * profile is `profile` when given (so a later launch with another camera
 * finds the web app's storage as it was left), a fresh one otherwise.
 * Returns the context, every console error and page error seen, and
 * `close()`.
 * @param {{ camera?: string, colorScheme?: "light" | "dark", profile?: string }} [options]
 */
export async function launchPhone({ camera, colorScheme = "light", profile } = {}) {
  const args = [
    ...CHROMIUM_ARGS,
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
  ];
  if (camera) args.push(`--use-file-for-fake-video-capture=${camera}`);
  const dir = profile ?? (await mkdtemp(path.join(tmpdir(), "tether-phone-profile-")));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args,
    viewport: PHONE,
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    colorScheme,
    permissions: camera ? ["camera"] : [],
  });
  const logs = [];
  context.on("console", (msg) => logs.push({ type: msg.type(), text: msg.text(), url: msg.location()?.url ?? "" }));
  context.on("weberror", (err) => logs.push({ type: "pageerror", text: String(err.error()), url: "" }));
  return {
    context,
    logs,
    async close() {
      await context.close();
      if (!profile) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A temporary folder for a test's files; `cleanup()` removes it. */
export async function scratch() {
  const dir = await mkdtemp(path.join(tmpdir(), "tether-phone-"));
  return { dir, file: (/** @type {string} */ name) => path.join(dir, name), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Waits until the web app shows the screen `name`. */
export const onScreen = (page, name, timeout = 15000) => page.waitForSelector(`body[data-screen="${name}"]`, { timeout });

/**
 * Registers `handle` (called `name`) on the phone, the recovery phrase
 * written down and three of its words confirmed; ends on the chat list.
 */
export async function registerPhone(page, server, handle, name) {
  await page.goto(server.url);
  await onScreen(page, "welcome");
  await page.click("#welcome-register");
  await onScreen(page, "register");
  await page.fill("#register-handle", handle);
  await page.fill("#register-name", name);
  await page.click("#register-submit");
  await onScreen(page, "phrase");
  const words = await page.$$eval("#phrase-words li", (lis) =>
    lis.sort((a, b) => Number(a.dataset.index) - Number(b.dataset.index)).map((li) => (li.querySelector(".word")?.textContent ?? li.textContent ?? "").replace(/^\s*\d+\.?\s*/, "").trim()),
  );
  await page.click("#phrase-next");
  await onScreen(page, "phrase-confirm");
  for (const k of [1, 2, 3]) {
    const n = Number((await page.textContent(`#phrase-confirm-label-${k}`))?.match(/\d+/)?.[0]);
    await page.fill(`#phrase-confirm-${k}`, words[n - 1]);
  }
  await page.click("#phrase-confirm-submit");
  await onScreen(page, "list");
}

/**
 * Registers alice on the phone (the recovery phrase confirmed) and opens a
 * chat with bob (a CLI user of `server`), where it writes `hello`, which
 * bob gets.
 */
export async function aliceOnPhone(page, server, bob, hello = "photos coming") {
  await registerPhone(page, server, "alice", "Alice");
  await bob.run(["contacts", "add", "alice", "--name", "Alice"]);
  await page.click("#new-chat");
  await page.fill("#new-chat-input", "bob");
  await page.click('#contact-list [data-handle="bob"] .chat-open');
  await page.waitForSelector("#composer", { state: "visible" });
  await page.fill("#composer", hello);
  await page.press("#composer", "Enter");
  await until(async () => (await bob.run(["read", "alice"])).stdout.includes(hello), "bob gets the phone's message", 20000);
}
