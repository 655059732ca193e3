// Real parts for the end-to-end tests: a spawned tether-server on
// 127.0.0.1:0 and the real `tether` CLI in its own home directories.

import { spawn, execFile } from "node:child_process";
import net from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import readline from "node:readline";

const SERVER_BIN = path.resolve(process.env.TETHER_SERVER_BIN ?? "target/debug/tether-server");
const CLI_BIN = path.resolve(process.env.TETHER_CLI_BIN ?? "target/debug/tether");

/**
 * Starts tether-server with a fresh data dir (and `args`, e.g. a blob
 * quota); resolves when it listens. `restart()` stops it and starts it
 * again on the same address and data.
 */
export async function startServer({ args = [] } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), "tether-server-"));
  const log = [];
  let { child, addr } = await spawnServer(dir, "127.0.0.1:0", args, log);
  return {
    url: `http://${addr}`,
    log,
    dir,
    async restart() {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      ({ child } = await spawnServer(dir, addr, args, log));
    },
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A slow uplink in front of `server`: a TCP relay on 127.0.0.1 that passes
 * what a client sends at most `bytesPerSecond` (answers at full speed), as
 * a phone's or a café's upload would. The client then uses `url`; the
 * server behind it may restart (the relay connects anew per connection);
 * `passed()` counts the bytes it passed up.
 * @param {{ url: string }} server
 * @param {number} bytesPerSecond
 */
export async function slowUplink(server, bytesPerSecond) {
  const { hostname, port } = new URL(server.url);
  /** @type {Set<net.Socket>} */
  const open = new Set();
  let passed = 0;
  const relay = net.createServer((client) => {
    const upstream = net.connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      open.add(s);
      s.on("close", () => open.delete(s));
      s.on("error", () => {}); // the other side's close follows
    }
    upstream.pipe(client);
    client.on("data", (bytes) => {
      client.pause();
      passed += bytes.length;
      upstream.write(bytes);
      setTimeout(() => client.resume(), (bytes.length / bytesPerSecond) * 1000);
    });
    client.on("end", () => upstream.end());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise((resolve) => relay.listen(0, "127.0.0.1", () => resolve(undefined)));
  const addr = /** @type {net.AddressInfo} */ (relay.address());
  return {
    url: `http://127.0.0.1:${addr.port}`,
    /** Bytes passed up so far. */
    passed: () => passed,
    close() {
      for (const s of open) s.destroy();
      relay.close();
    },
  };
}

async function spawnServer(dir, listen, args, log) {
  const child = spawn(SERVER_BIN, ["--listen", listen, "--data", path.join(dir, "data"), ...args], {
    // TETHER_E2E_SERVER_LOG: a tracing filter for the server (e.g. "debug") when a test is looked into.
    env: { ...process.env, TETHER_LOG: process.env.TETHER_E2E_SERVER_LOG || "info" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const addr = await new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stderr });
    rl.on("line", (line) => {
      log.push(line);
      const m = line.match(/addr=(\S+)/);
      if (m) resolve(m[1]);
    });
    child.on("exit", (code) => reject(new Error(`tether-server exited (${code}): ${log.join("\n")}`)));
    setTimeout(() => reject(new Error("tether-server did not start")), 15000);
  });
  return { child, addr };
}

/** A `tether` CLI user with its own home. */
export async function cliUser() {
  const home = await mkdtemp(path.join(tmpdir(), "tether-cli-"));
  const run = (args, { allowFail = false, timeout = 60000 } = {}) =>
    new Promise((resolve, reject) => {
      execFile(CLI_BIN, ["--data", home, ...args], { timeout }, (err, stdout, stderr) => {
        if (err && !allowFail) reject(new Error(`tether ${args.join(" ")} failed: ${stderr || err.message}\n${stdout}`));
        else resolve({ ok: !err, stdout, stderr });
      });
    });
  return { home, run, cleanup: () => rm(home, { recursive: true, force: true }) };
}

/** Two CLI users, alice and bob, registered on `server`, each the other's contact. */
export async function aliceAndBob(server) {
  const alice = await cliUser();
  const bob = await cliUser();
  await alice.run(["register", "alice", "--server", server.url]);
  await bob.run(["register", "bob", "--server", server.url]);
  await bob.run(["contacts", "add", "alice", "--name", "Alice"]);
  await alice.run(["contacts", "add", "bob", "--name", "Bob"]);
  return { alice, bob };
}

/** Waits until `fn()` returns a truthy value (polling), or fails with `what`. */
export async function until(fn, what, timeout = 15000) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}
