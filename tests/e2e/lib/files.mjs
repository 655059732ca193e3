// What the file tests of the popup and of the phone web app share (both
// run the same chat views): the refusals in words, and the id of a file
// as the CLI's `tether read` prints it.

import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { launch, linkByQr } from "./extension.mjs";
import { aliceAndBob, slowUplink, startServer, until } from "./tether.mjs";

/**
 * A file over 64 MB is refused in the draft before any upload; one over
 * the account's quota is refused by the server, shown as not sent with
 * Retry. `huge` is a 65 MB file, `overQuota` one the server's
 * `--blob-quota` does not leave room for.
 */
export async function assertRefusals(page, huge, overQuota) {
  await page.setInputFiles("#file-input", huge);
  const error = page.locator("#file-draft .file-error");
  await error.waitFor({ timeout: 10000 });
  assert.match(await error.textContent(), /huge\.bin is 65 MB: files can be at most 64 MB\./);
  assert.equal(await page.isDisabled("#send"), true);
  await page.click("#file-draft button");
  await page.setInputFiles("#file-input", overQuota);
  await page.waitForSelector("#file-draft .file-name", { timeout: 10000 });
  await page.click("#send");
  const failed = page.locator("#messages .msg.me .file-failed").last();
  await failed.waitFor({ timeout: 30000 });
  assert.match(await failed.textContent(), /Not sent · Your account's storage on the server is full/);
  assert.equal(await failed.locator(".file-retry").count(), 1);
}

/**
 * The newest file message `user` (a CLI) got from `from` whose line in
 * `tether read` matches `pattern`: its id and that line.
 */
export async function lastFile(user, from, pattern = /./) {
  return until(async () => {
    const lines = (await user.run(["read", from], { allowFail: true })).stdout.split("\n");
    for (let i = lines.length - 1; i > 0; i--) {
      const m = lines[i].match(/^\s+id ([0-9a-f]{32})/);
      if (m && pattern.test(lines[i - 1])) return { id: m[1], line: lines[i - 1] };
    }
    // Not there yet: what it read instead, for the timeout's message.
    throw new Error(`tether read ${from} ends with: ${JSON.stringify(lines.slice(-4))}`);
  }, `a file from ${from} matching ${pattern}`, 30000);
}

/**
 * A server (with `serverArgs`), alice and bob on the CLI, and the extension
 * linked to alice with bob's chat open; `tag` names the scratch directory
 * and the QR screenshot. With `uplink` (bytes per second) the extension
 * reaches the server through a slow uplink (`relay`). The caller stops and
 * removes what it returns.
 */
export async function extensionInBobsChat(tag, serverArgs = [], { uplink = 0 } = {}) {
  const server = await startServer({ args: serverArgs });
  const { alice, bob } = await aliceAndBob(server);
  await alice.run(["send", "bob", "hello bob"]);
  const ext = await launch();
  const scratch = await mkdtemp(path.join(tmpdir(), `tether-${tag}-`));
  const relay = uplink ? await slowUplink(server, uplink) : undefined;
  const page = await linkByQr(ext, relay ? { ...server, url: relay.url } : server, alice, "alice", `${tag}-link-qr`);
  await page.waitForSelector('#chat-list [data-chat="bob"]', { timeout: 15000 });
  await page.click('#chat-list [data-chat="bob"]');
  await page.waitForSelector("#composer", { state: "visible" });
  return { server, alice, bob, ext, scratch, page, relay };
}
