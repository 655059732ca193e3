// @ts-check
// The web app's side of file transfers: the page is the host, so
// common/transfer.js (the same module the extension's worker uses) runs
// here with the app's build of the core's format helpers, and its
// progress goes to the chat screens (router.js).

import { BlobHasher, mediaAad, mediaChunkSize, mediaNonce } from "../wasm/tether_app.js";
import { setTransferHost } from "../common/transfer.js";

export { cancelUpload, fileRequest, onTransfer, retryUpload, sendFile, sweepOutgoing } from "../common/transfer.js";

/** @typedef {import("../common/messages.js").Progress} Progress */

/** @type {Set<(p: Progress) => void>} */
const listeners = new Set();

/**
 * Calls `fn` with every transfer's progress.
 * @param {(p: Progress) => void} fn
 */
export function onProgress(fn) {
  listeners.add(fn);
}

setTransferHost({
  media: { BlobHasher, mediaAad, mediaChunkSize, mediaNonce },
  show(p) {
    for (const fn of listeners) fn(p);
  },
  report(err) {
    console.warn("tether:", err instanceof Error ? err.message : String(err));
  },
});
