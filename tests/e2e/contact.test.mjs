// The contact info screen (issue 9, finding 5): opened from the chat
// header, it shows the safety number the core computes (digits and QR),
// the same 60 digits the CLI primary prints with `tether verify`, and
// "Mark as verified"; the CLI scanning a screenshot of its QR finds a
// match; light and dark.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdir, copyFile } from "node:fs/promises";
import { launch, linkByQr, openPopup, screenshot } from "./lib/extension.mjs";
import { startServer, aliceAndBob } from "./lib/tether.mjs";

const SHOTS = process.env.TETHER_SHOTS ?? "";

let server, alice, bob, ext;

before(async () => {
  server = await startServer();
  ({ alice, bob } = await aliceAndBob(server));
  await bob.run(["send", "alice", "hello before the link"]);
  await alice.run(["read", "bob"]);
  ext = await launch();
});

after(async () => {
  await ext?.close();
  await server?.stop();
  await alice?.cleanup();
  await bob?.cleanup();
});

/** The 12 groups of 5 digits `tether verify` printed. */
function digits(out) {
  const groups = out.split("\n").filter((l) => l.startsWith("    ")).flatMap((l) => l.trim().split(/\s+/)).filter((g) => /^\d{5}$/.test(g));
  assert.equal(groups.length, 12, out);
  return groups.join(" ");
}

async function shot(page, name) {
  const file = await screenshot(page, name);
  if (SHOTS) {
    await mkdir(SHOTS, { recursive: true });
    await copyFile(file, `${SHOTS}/${name}.png`);
  }
}

test("the contact info screen shows the same safety number as the CLI primary, and marks the contact verified", async () => {
  const page = await linkByQr(ext, server, alice, "alice", "contact-link-qr");
  await page.waitForSelector('#chat-list [data-chat="bob"]', { timeout: 15000 });

  await page.click('#chat-list [data-chat="bob"]');
  await page.waitForSelector("#composer", { state: "visible" });
  await page.click("#title");
  await page.waitForSelector('#view[data-screen="contact"]');
  await page.waitForFunction(() => (document.getElementById("safety-number")?.textContent ?? "").length === 71, null, { timeout: 15000 });

  const shown = (await page.textContent("#safety-number")).trim();
  const printed = digits((await alice.run(["verify", "bob"])).stdout);
  assert.equal(shown, printed, "the popup and the CLI primary show one number");
  assert.equal(shown, digits((await bob.run(["verify", "alice"])).stdout), "and bob sees it too");
  assert.ok(await page.isVisible("#safety-qr svg"), "the number's QR is drawn");
  assert.equal(await page.getAttribute("#contact-state", "data-state"), "unverified");
  assert.match(await page.textContent("#contact-handle"), /@bob/);

  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    await shot(page, `popup-contact-${scheme}`);
  }
  await page.locator("#safety-qr").scrollIntoViewIfNeeded();
  await shot(page, "popup-contact-qr-dark");

  // Bob scans alice's screen (a screenshot of the popup) with the CLI: a match.
  await page.emulateMedia({ colorScheme: "light" });
  await page.locator("#safety-qr").scrollIntoViewIfNeeded();
  const scanned = await bob.run(["verify", "alice", "--scan", await screenshot(page, "contact-scan")]);
  assert.match(scanned.stdout, /matches: alice is verified/);

  await page.click("#mark-verified");
  await page.waitForSelector('#contact-state[data-state="verified"]', { timeout: 10000 });
  assert.ok(await page.isHidden("#mark-verified"));
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    await shot(page, `popup-contact-verified-${scheme}`);
  }
  // Back to the chat: the header says verified.
  await page.click("#back");
  await page.waitForSelector('#view[data-screen="chat"]');
  assert.match(await page.textContent("#subtitle"), /verified/);
  await page.close();
});
