// `cargo xtask bench link`: how long linking takes as a person sees it,
// with a real history. The phone web app (a second Chromium, its camera
// fed the popup's QR) holds N messages with bob (default 1,000, sent from
// its composer); then the time from tapping "Link a device" to the popup
// listing bob's chat, and to the popup showing bob's last message.
// Prints the numbers and writes them to target/bench/link.json.

import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { confirmAccount, launch, openPopup } from "./lib/extension.mjs";
import { cameraFrom, launchPhone, scratch } from "./lib/phone.mjs";
import { cliUser, startServer, until } from "./lib/tether.mjs";

const N = Number(process.env.TETHER_BENCH_MESSAGES ?? 1000);
const server = await startServer();
const bob = await cliUser();
const tmp = await scratch();
let ext, phone;
try {
  await bob.run(["register", "bob", "--server", server.url]);
  ext = await launch();
  const popup = await openPopup(ext);
  await popup.fill("#server-input", server.url);
  await popup.click("#check-server");
  await popup.waitForSelector("#qr svg", { state: "visible", timeout: 15000 });

  // The phone registers and writes the history without a camera; then it
  // starts again (same profile, so the same web app storage) with the
  // popup's current QR as its camera.
  const profile = tmp.file("phone-profile");
  phone = await launchPhone({ profile });
  let page = await phone.context.newPage();
  await page.goto(server.url);
  await page.click("#welcome-register");
  await page.fill("#register-handle", "alice");
  await page.fill("#register-name", "Alice");
  await page.click("#register-submit");
  await page.waitForSelector('body[data-screen="phrase"]');
  const words = await page.$$eval("#phrase-words li", (lis) =>
    lis.map((li) => (li.querySelector(".word")?.textContent ?? li.textContent ?? "").replace(/^\s*\d+\.?\s*/, "").trim()),
  );
  await page.click("#phrase-next");
  for (const k of [1, 2, 3]) {
    const n = Number((await page.textContent(`#phrase-confirm-label-${k}`))?.match(/\d+/)?.[0]);
    await page.fill(`#phrase-confirm-${k}`, words[n - 1]);
  }
  await page.click("#phrase-confirm-submit");
  await page.waitForSelector('body[data-screen="list"]');

  // N messages with bob, from the phone's composer.
  await page.click("#new-chat");
  await page.fill("#new-chat-input", "bob");
  await page.click('#contact-list [data-handle="bob"] .chat-open');
  await page.waitForSelector("#composer", { state: "visible" });
  const seeded = Date.now();
  for (let i = 1; i <= N; i++) {
    await page.fill("#composer", `message ${i} of ${N}`);
    await page.press("#composer", "Enter");
  }
  const last = `message ${N} of ${N}`;
  await page.waitForSelector(`#messages :text("${last}")`, { timeout: 300000 });
  // Everything reached the server: no bubble is still pending.
  await until(async () => (await page.$$('#messages .msg.me[data-status="pending"]')).length === 0 && (await page.$$('#messages .msg.me[data-status]')).length > 0, "the outbox drained", 300000);
  const seedMs = Date.now() - seeded;
  await phone.close();

  // A QR with most of its minute ahead (it rotates by itself; one about to
  // expire would be refused by the server while the phone starts).
  // (Writing the history outlasts the popup's codes: it offers a new one.)
  if (await popup.isVisible("#new-code")) await popup.click("#new-code");
  await popup.waitForFunction(() => /(1:00|0:[3-5]\d)/.test(document.getElementById("countdown-text")?.textContent ?? ""), null, { timeout: 70000 });
  const qr = tmp.file("qr.png");
  await popup.locator("#qr").screenshot({ path: qr });
  phone = await launchPhone({ profile, camera: await cameraFrom(qr, tmp.file("camera.y4m")) });
  page = await phone.context.newPage();
  await page.goto(server.url);
  await page.waitForSelector('body[data-screen="list"]', { timeout: 30000 });

  const t0 = Date.now();
  await page.click("#link-device");
  await page.waitForSelector('body[data-screen="link-confirm"]', { timeout: 30000 }).catch(async (e) => {
    await page.screenshot({ path: tmp.file("fail.png") });
    console.log("scan status:", await page.textContent("#scan-status").catch(() => "?"));
    throw e;
  });
  const scannedMs = Date.now() - t0;
  await page.click("#link-confirm-yes");
  await confirmAccount(popup, "alice");
  await popup.waitForSelector('#chat-list [data-chat="bob"]', { timeout: 120000 });
  const listMs = Date.now() - t0;
  await popup.click('#chat-list [data-chat="bob"]');
  await popup.waitForSelector(`#messages :text("${last}")`, { timeout: 120000 });
  const lastMs = Date.now() - t0;

  const result = { messages: N, seed_ms: seedMs, scan_to_confirm_ms: scannedMs, link_to_chat_list_ms: listMs, link_to_last_message_ms: lastMs };
  console.log(`history: ${N} messages (written in ${(seedMs / 1000).toFixed(1)} s)`);
  console.log(`"Link a device" → "Link Chrome on Linux?" (camera decode): ${scannedMs} ms`);
  console.log(`"Link a device" → the popup lists the chat:            ${listMs} ms`);
  console.log(`"Link a device" → the popup shows the last message:     ${lastMs} ms`);
  const out = path.resolve("target/bench");
  await mkdir(out, { recursive: true });
  await writeFile(path.join(out, "link.json"), JSON.stringify(result, null, 2) + "\n");
} finally {
  await phone?.close();
  await ext?.close();
  await server.stop();
  await bob.cleanup();
  await tmp.cleanup();
}
