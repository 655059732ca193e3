// The built extension in headless Chromium: the worker starts the optimised
// wasm core, and the popup shows the core's version and link state that it
// gets from the worker over a runtime Port.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { EXTENSION, launch, openPopup, screenshot, stopWorkers, errors } from "./lib/extension.mjs";

/** The workspace version: what the core must report. */
async function workspaceVersion() {
  const toml = await readFile(path.resolve("Cargo.toml"), "utf8");
  const section = toml.slice(toml.indexOf("[workspace.package]"));
  return section.match(/^version\s*=\s*"([^"]+)"/m)[1];
}

let ext;
before(async () => {
  ext = await launch();
});
after(async () => {
  await ext?.close();
});

test("the extension ships the optimised wasm core", async () => {
  const wasm = await readFile(path.join(EXTENSION, "wasm/tether_core_bg.wasm"));
  assert.equal(wasm.subarray(0, 4).toString("latin1"), "\0asm");
  // A debug build carries DWARF sections and names; the optimised one must not.
  assert.ok(!wasm.includes(Buffer.from(".debug_info")), "wasm has debug info: not the optimised build");
});

test("the worker starts the core and publishes its version and link state", async () => {
  // The worker caches the core's snapshot in storage.session as soon as the
  // core is up (that cache is what lets the popup paint at once).
  const snap = await ext.worker.evaluate(async () => {
    for (let i = 0; i < 200; i++) {
      const { snapshot } = await chrome.storage.session.get("snapshot");
      if (snapshot) return snapshot;
      await new Promise((r) => setTimeout(r, 50));
    }
    return null;
  });
  assert.ok(snap, "the worker published a snapshot from the core within 10 s");
  assert.equal(snap.version, await workspaceVersion());
  assert.equal(snap.state, "setup", "not linked: the first-run screen");
  assert.equal(snap.account, null);
  assert.equal(snap.protocolVersion, 1);
});

test("the popup opens on first run asking for the server, light and dark", async () => {
  for (const colorScheme of ["light", "dark"]) {
    const page = await openPopup(ext, { colorScheme });
    await page.waitForSelector('#view[data-state="setup"]', { timeout: 10000 });
    assert.equal(await page.inputValue("#server-input"), "http://127.0.0.1:7780", "prefilled with the build's default server");
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    if (colorScheme === "dark") assert.notEqual(bg, "rgb(247, 248, 250)", "dark scheme changes the background");
    await screenshot(page, `popup-unlinked-${colorScheme}`);
    await page.close();
  }
});

test("after Chrome stops the worker, it comes back whole when the popup opens, with no console errors", async () => {
  const page = await ext.context.newPage();
  await page.goto("about:blank");
  await stopWorkers(ext, page);
  const before = errors(ext).length;
  const popup = await openPopup(ext);
  await popup.waitForSelector('#view[data-state="setup"]', { timeout: 10000 });
  const { snapshot } = await ext.worker.evaluate(() => chrome.storage.session.get("snapshot"));
  assert.equal(snapshot.version, await workspaceVersion(), "the restarted worker's core reports its version");
  assert.deepEqual(errors(ext).slice(before), [], "no console errors after the worker restarted");
  assert.deepEqual(errors(ext), [], "no console errors at all");
  await popup.close();
  await page.close();
});
