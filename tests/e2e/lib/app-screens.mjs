// Screenshots of the phone web app at 390 × 844, light and dark, against a
// running tether-server (its embedded dist/app):
//     node tests/e2e/lib/app-screens.mjs [http://127.0.0.1:7780] [out-dir]
// It registers a fresh account (a random handle), so use a throwaway
// server. The camera is Chromium's fake device (a test pattern). Also
// prints Chromium's installability errors for the manifest
// (CDP Page.getInstallabilityErrors): none expected.
import { chromium } from "playwright-core";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const base = process.argv[2] || "http://127.0.0.1:7780";
const out = process.argv[3] || "test-artifacts/app-screens";
mkdirSync(out, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
  ],
});

/** @param {import("playwright-core").Page} page @param {string} screen */
async function waitScreen(page, screen) {
  await page.waitForFunction((s) => document.body.dataset.screen === s, screen, { timeout: 20000 });
  await page.waitForTimeout(300);
}

for (const scheme of ["light", "dark"]) {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, colorScheme: scheme, isMobile: true, hasTouch: true, permissions: ["camera"] });
  const page = await context.newPage();
  page.on("console", (m) => m.type() === "error" && console.log(`[${scheme}] console: ${m.text()}`));
  page.on("pageerror", (e) => console.log(`[${scheme}] page error: ${e.message}`));
  const shot = async (name) => page.screenshot({ path: join(out, `${name}-${scheme}.png`) });

  await page.goto(base);
  await waitScreen(page, "welcome");
  await shot("01-welcome");
  await page.click("#welcome-restore");
  await waitScreen(page, "restore");
  await shot("02-restore");
  await page.goto(base);
  await waitScreen(page, "welcome");
  await page.click("#welcome-register");
  await waitScreen(page, "register");
  const handle = `phone${Date.now().toString(36)}${scheme[0]}`;
  await page.fill("#register-handle", handle);
  await page.fill("#register-name", "Alice Phone");
  await shot("03-register");
  await page.click("#register-submit");
  await page.waitForFunction(() => ["phrase", "list"].includes(document.body.dataset.screen ?? ""), null, { timeout: 20000 });
  await page.waitForTimeout(300);
  if ((await page.evaluate(() => document.body.dataset.screen)) === "phrase") {
    await shot("04-phrase");
    await page.click("#phrase-next");
    if ((await page.evaluate(() => document.body.dataset.screen)) === "phrase-confirm") {
      await shot("05-phrase-confirm");
      const asked = await page.$$eval("#phrase-confirm label", (ls) => ls.map((l) => Number(l.textContent?.replace(/\D/g, ""))));
      const words = await page.evaluate(() => [...document.querySelectorAll("#phrase-words li")].map((li) => li.textContent));
      for (let i = 0; i < asked.length; i++) await page.fill(`#phrase-confirm-${i + 1}`, words[asked[i] - 1] ?? "");
      await page.click("#phrase-confirm-submit");
    }
  }
  await waitScreen(page, "list");
  await shot("06-chats");
  await page.click("#new-chat");
  await waitScreen(page, "newchat");
  await shot("07-newchat");
  await page.click("#nav-chats").catch(() => {});
  await page.click("#back").catch(() => {});
  await waitScreen(page, "list");
  await page.click("#open-devices");
  await waitScreen(page, "devices");
  await page.waitForSelector("#devices-list [data-device]", { timeout: 10000 }).catch(() => {});
  await shot("08-devices");
  await page.click("#link-device");
  await waitScreen(page, "link");
  await page.waitForTimeout(1500);
  await shot("09-link-camera");
  await page.click("#enter-code");
  await waitScreen(page, "link-code");
  await page.fill("#code-input", "ABCD2345");
  await shot("10-link-code");
  await page.click("#nav-chats");
  await waitScreen(page, "list");
  await page.click("#settings");
  await waitScreen(page, "settings");
  await shot("11-settings");
  await context.close();
}
await browser.close();
console.log(`screenshots in ${out}`);

// Installability needs a profile on disk (an incognito context is never installable).
const profile = mkdtempSync(join(tmpdir(), "tether-app-"));
const persistent = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 390, height: 844 },
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const page = await persistent.newPage();
await page.goto(base);
await page.evaluate(() => navigator.serviceWorker.ready);
await page.reload();
await waitScreen(page, "welcome");
const cdp = await persistent.newCDPSession(page);
const { installabilityErrors } = await cdp.send("Page.getInstallabilityErrors");
const manifest = await cdp.send("Page.getAppManifest");
console.log("manifest errors:", JSON.stringify(manifest.errors));
console.log("installability errors:", JSON.stringify(installabilityErrors));
const controlled = await page.evaluate(() => !!navigator.serviceWorker.controller);
console.log("service worker controls the page:", controlled);
// Offline: the shell still loads from the service worker.
await persistent.setOffline(true);
await page.reload();
await waitScreen(page, "welcome").then(() => console.log("offline reload: the shell loads")).catch(() => console.log("offline reload: FAILED"));
await persistent.close();
rmSync(profile, { recursive: true, force: true });
