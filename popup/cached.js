// @ts-check
// The snapshot the worker cached in storage.session, asked for as soon as
// the page is parsed: popup.html loads this module `async`, and as it
// imports nothing it runs as soon as it has arrived, while main.js still
// waits for its ~30 modules. main.js imports this same instance and paints
// from it, without a read of its own after them.

/** @typedef {import("../common/messages.js").Snapshot} Snapshot */

/** The cached snapshot, or undefined (none yet, or storage refused). @type {Promise<Snapshot | undefined>} */
export const cachedSnapshot = chrome.storage.session.get("snapshot").then(
  (stored) => /** @type {Snapshot | undefined} */ (stored.snapshot),
  () => undefined,
);
