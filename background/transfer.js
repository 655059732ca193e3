// @ts-check
// The worker's side of file transfers: common/transfer.js moves the bytes
// (WebCrypto, IndexedDB, the server's blob routes) for both hosts; here it
// gets the extension's build of the core's format helpers, and its
// progress goes to every open popup's Port.

import { BlobHasher, mediaAad, mediaChunkSize, mediaNonce } from "../wasm/tether_core.js";
import { progress, setTransferHost } from "../common/transfer.js";
import { ports, post } from "./ports.js";
import { report } from "./log.js";

export { cancelUpload, fileRequest, onTransfer, retryUpload, sendFile, sweepOutgoing } from "../common/transfer.js";

setTransferHost({
  media: { BlobHasher, mediaAad, mediaChunkSize, mediaNonce },
  show(p) {
    for (const port of ports.keys()) post(port, { kind: "progress", progress: p });
  },
  report,
});

/** Sends every popup the progress it needs on connect. @param {chrome.runtime.Port} port */
export function replayProgress(port) {
  for (const p of progress.values()) post(port, { kind: "progress", progress: p });
}
