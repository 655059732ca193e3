// @ts-check
// Boots the wasm core once per worker start, as a promise every handler
// awaits (a module service worker cannot use top-level await).

import init, { Core } from "../wasm/tether_core.js";
import { DEFAULT_SERVER } from "./config.js";
import { createHost } from "./host.js";
import { platform } from "./platform.js";
import { report } from "./log.js";
import { sweepOutgoing } from "./transfer.js";

/** The alarm that wakes a stopped worker to reconnect. */
export const ALARM = "tether-tick";

/**
 * When this worker life's milestones happened (ms since the worker
 * started): the core open and woken, the first badge. Read by
 * `cargo xtask bench history` and DevTools.
 * @type {{ ready?: number, badge?: number }}
 */
export const bootTimes = {};

/** @type {Core | undefined} */
let core;

async function boot() {
  // The wasm's address from this module's: the build bundles the worker
  // into background/worker.js, where the glue's default (beside itself)
  // would be wrong.
  await init({ module_or_path: new URL("../wasm/tether_core_bg.wasm", import.meta.url) });
  const entries = await chrome.storage.local.get(null);
  const p = platform();
  core = Core.open(createHost(() => core), p.id, p.name, DEFAULT_SERVER, entries);
  if (!(await chrome.alarms.get(ALARM))) await chrome.alarms.create(ALARM, { periodInMinutes: 0.5 });
  await core.wake();
  bootTimes.ready = performance.now();
  sweepOutgoing(core).catch(report);
  return core;
}

/** The core, once booted. */
export const ready = boot();

/**
 * Runs `fn` with the core once it is up; failures are logged.
 * @template T
 * @param {(core: Core) => T | Promise<T>} fn
 * @returns {Promise<T | undefined>}
 */
export function whenReady(fn) {
  return ready.then(fn).catch((err) => {
    report(err);
    return undefined;
  });
}
