// @ts-check
// The snapshot the worker cached in storage.session, asked for first:
// main.js imports this module before any other, and it imports nothing, so
// in the built popup (one script, `cargo xtask build` bundles it) the read
// starts before the rest of the code runs. main.js paints from it.

/** @typedef {import("../common/messages.js").Snapshot} Snapshot */

/** The cached snapshot, or undefined (none yet, or storage refused). @type {Promise<Snapshot | undefined>} */
export const cachedSnapshot = chrome.storage.session.get("snapshot").then(
  (stored) => /** @type {Snapshot | undefined} */ (stored.snapshot),
  () => undefined,
);
