// Tether's MV3 service worker: thin glue between chrome.* and the Rust core.
//
// Every listener is registered synchronously at the top level (a stopped
// worker is woken by the event it listens for), then the core is initialised
// as a promise that handlers await. No protocol logic lives here.

import init, { Core } from "../wasm/tether_core.js";
import { DEFAULT_SERVER } from "./config.js";

const SNAPSHOT_KEY = "snapshot";

// ---- listeners (top level, synchronous) ------------------------------------

chrome.runtime.onConnect.addListener(onConnect);
chrome.runtime.onInstalled.addListener(() => {
  ready.then(publish).catch(reportStartFailure);
});
chrome.runtime.onStartup.addListener(() => {
  ready.then(publish).catch(reportStartFailure);
});

// ---- core ------------------------------------------------------------------

/** Resolves to the core once the wasm module is instantiated. */
const ready = init().then(() => new Core());
ready.then(publish).catch(reportStartFailure);

/** Popup ports currently open: each gets every new snapshot. */
const ports = new Set();

/** What the popup renders: the core's status plus what the worker knows. */
function snapshot(core) {
  return { ...core.status(), server: DEFAULT_SERVER };
}

/** Caches the snapshot (so the popup paints at once) and pushes it to open popups. */
async function publish(core) {
  const snap = snapshot(core);
  await chrome.storage.session.set({ [SNAPSHOT_KEY]: snap });
  for (const port of ports) port.postMessage({ kind: "snapshot", snapshot: snap });
}

function reportStartFailure(err) {
  // The message names the failure, never any key or message content.
  console.error("tether: core failed to start:", err && err.message ? err.message : err);
}

// ---- message router ----------------------------------------------------------

function onConnect(port) {
  if (port.name !== "popup" || port.sender?.id !== chrome.runtime.id) return;
  ports.add(port);
  port.onDisconnect.addListener(() => ports.delete(port));
  port.onMessage.addListener((msg) => route(port, msg));
}

/** One router, switching on the message kind. */
async function route(port, msg) {
  switch (msg?.kind) {
    case "snapshot": {
      try {
        const core = await ready;
        port.postMessage({ kind: "snapshot", snapshot: snapshot(core) });
      } catch (err) {
        port.postMessage({ kind: "error", message: String(err?.message ?? err) });
      }
      break;
    }
    default:
      port.postMessage({ kind: "error", message: `unknown request: ${String(msg?.kind)}` });
  }
}
