// `cargo xtask bench media`, the extension's part: WebCrypto AES-256-GCM
// throughput in the extension's service worker (64 MiB in 256 KiB chunks,
// the §14.1 format's IVs and associated data), and the time to send 64 MiB
// from the popup to the server on loopback (click on Send to the message
// sent: read from IndexedDB, encrypt, digest in the core, PATCH, message).
// Prints the numbers and writes them to target/bench/media-extension.json.

import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { launch, linkByQr } from "./lib/extension.mjs";
import { aliceAndBob, startServer, until } from "./lib/tether.mjs";

const SIZE = 64 * 1024 * 1024;
const server = await startServer();
const { alice, bob } = await aliceAndBob(server);
const tmp = await mkdtemp(path.join(tmpdir(), "tether-bench-media-"));
let ext;
try {
  await alice.run(["send", "bob", "hi"]);
  ext = await launch();
  const page = await linkByQr(ext, server, alice, "alice", "bench-media-qr");

  // WebCrypto in the worker: the same calls background/transfer.js makes.
  const crypto = await ext.worker.evaluate(async (size) => {
    const C = 256 * 1024;
    const key = await crypto.subtle.importKey("raw", crypto.getRandomValues(new Uint8Array(32)), "AES-GCM", false, ["encrypt"]);
    const plain = new Uint8Array(C);
    crypto.getRandomValues(plain.subarray(0, 65536));
    const label = new TextEncoder().encode("tether media v1");
    const n = size / C;
    const run = async () => {
      const t = performance.now();
      for (let i = 0; i < n; i++) {
        const iv = new Uint8Array(12);
        new DataView(iv.buffer).setBigUint64(4, BigInt(i));
        const aad = new Uint8Array(24);
        aad.set(label);
        new DataView(aad.buffer).setBigUint64(15, BigInt(i));
        await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad }, key, plain);
      }
      return performance.now() - t;
    };
    await run(); // warm up
    const ms = await run();
    return { ms, mbS: size / 1e6 / (ms / 1000) };
  }, SIZE);

  // 64 MiB from the popup to the server.
  await page.click('#chat-list [data-chat="bob"]');
  await page.waitForSelector("#composer", { state: "visible" });
  const file = path.join(tmp, "random.bin");
  await writeFile(file, randomBytes(SIZE));
  await page.setInputFiles("#file-input", file);
  await page.waitForSelector("#file-draft .file-name");
  const t = Date.now();
  await page.click("#send");
  const last = page.locator("#messages .msg.me.kind-file").last();
  await last.waitFor();
  await until(async () => ["sent", "delivered", "read"].includes(await last.getAttribute("data-status")), "the file sent", 300000);
  const sendMs = Date.now() - t;

  const result = {
    webcrypto_encrypt_mb_s: Math.round(crypto.mbS),
    webcrypto_encrypt_64mib_ms: Math.round(crypto.ms),
    extension_send_64mib_ms: sendMs,
  };
  console.log("\nfiles in the extension (Chromium, service worker)");
  console.log(`  WebCrypto AES-GCM encrypt  ${String(result.webcrypto_encrypt_mb_s).padStart(8)} MB/s   (goal: ≥ 1,000 MB/s)`);
  console.log(`  send 64 MiB to the server  ${String(sendMs).padStart(8)} ms     (click on Send to the message sent, loopback)`);
  const out = path.resolve("target/bench/media-extension.json");
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify(result, null, 2));
  console.log(`written to ${out}`);
} finally {
  await ext?.close();
  await server.stop();
  await alice.cleanup();
  await bob.cleanup();
  await rm(tmp, { recursive: true, force: true });
}
