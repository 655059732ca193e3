// @ts-check
// Moves files' bytes, for both hosts of the core: the extension's service
// worker (background/transfer.js) and the phone web app's page
// (app/transfer.js). The core (src/media.rs) orders a transfer once the
// server gave a ticket; this encrypts or decrypts with WebCrypto AES-GCM
// chunk by chunk (docs/protocol.md §14.1) and talks tus-style HTTP to the
// server (§14.3). Format values (nonce, associated data, chunk size) and
// the blob digest come from the core; every decision about tickets,
// refusals and messages is the core's. Never more than a few 256 KiB
// chunks of a file in memory: the file is read in Blob slices, uploads go
// in PATCHes of a few MiB, downloads are decrypted as they stream in.
//
// The host passes in its build of the core's format helpers (the
// extension's `tether_core.js` or the app's `tether_app.js`: each page
// initialises only its own) and where progress goes (`show`): this module
// touches neither chrome.* nor the DOM.
//
// Why the AES calls are here and not in Rust: see src/media.rs.

import { FILES, OUTGOING, deleteBlob, getBlob, keys, putBlob, renameBlob } from "./files.js";

/** @typedef {import("../wasm/tether_core.js").Transfer} Transfer */
/**
 * What of the core a transfer uses (the extension's and the app's `Core` both have it).
 * @typedef {Pick<import("../wasm/tether_core.js").Core, "sendFile" | "uploadFinished" | "uploadInterrupted" | "cancelUpload" | "retryUpload" | "discardUpload" | "downloadFile" | "downloadFinished" | "uploads">} Core
 */
/**
 * The core's media format helpers, from the host's build of the core.
 * @typedef {{
 *   BlobHasher: typeof import("../wasm/tether_core.js").BlobHasher,
 *   mediaAad: typeof import("../wasm/tether_core.js").mediaAad,
 *   mediaChunkSize: typeof import("../wasm/tether_core.js").mediaChunkSize,
 *   mediaNonce: typeof import("../wasm/tether_core.js").mediaNonce,
 * }} MediaFormat
 */
/**
 * What a host gives the transfers: the format helpers, where each
 * progress goes (every open view), and where failures are logged.
 * @typedef {{ media: MediaFormat, show: (p: Progress) => void, report: (err: unknown) => void }} TransferHost
 */
/** @typedef {Extract<Transfer, { kind: "upload" }>} UploadOrder */
/** @typedef {Extract<Transfer, { kind: "download" }>} DownloadOrder */
/** @typedef {import("./messages.js").Progress} Progress */

const TAG = 16;
/** Bytes per PATCH: fine-grained progress and resume, few requests. */
const PATCH_BYTES = 4 * 1024 * 1024;
/** Interruptions in a row (no progress between) before an upload stops for good. */
const MAX_TRIES = 5;
/** Download progress is reported every this many bytes. */
const REPORT_EVERY = 1024 * 1024;

/** Transfers running in this worker, by message id. @type {Map<string, AbortController>} */
const active = new Map();
/** The last progress of each transfer, for popups that open later. @type {Map<string, Progress>} */
export const progress = new Map();
/** Interruptions in a row, by upload id. @type {Map<string, number>} */
const tries = new Map();
/** Files the popup handed over whose message the core is still making. @type {Set<Promise<unknown>>} */
const handing = new Set();

/** The host, once it called `setTransferHost`. @type {TransferHost | null} */
let host = null;

/**
 * Sets the host's format helpers and progress sink; called once, before
 * the core can order a transfer.
 * @param {TransferHost} h
 */
export function setTransferHost(h) {
  host = h;
}

/** @returns {TransferHost} */
function theHost() {
  if (!host) throw new Error("transfers have no host (setTransferHost)");
  return host;
}

/** @param {unknown} err */
function errorMessage(err) {
  return err instanceof Error ? err.message : String(err);
}

/** A failed HTTP exchange: worth a new ticket (`retry`) or not. */
class TransferError extends Error {
  /** @param {string} message @param {boolean} retry @param {number | null} [offset] the server's Upload-Offset, where it said */
  constructor(message, retry, offset = null) {
    super(message);
    this.retry = retry;
    this.offset = offset;
  }
}

/**
 * Sends a file the popup put in IndexedDB under `key`: the core makes the
 * message, then the file takes the message's id.
 * @param {Core} core
 * @param {string} chat
 * @param {string} key
 * @param {import("../wasm/tether_core.js").FileInfo} info
 * @param {string} caption
 */
export async function sendFile(core, chat, key, info, caption) {
  /** @type {(v?: unknown) => void} */
  let handed = () => {};
  const wait = new Promise((resolve) => (handed = resolve));
  handing.add(wait);
  try {
    const blob = await getBlob(OUTGOING, key);
    if (!blob) throw new Error("the file to send is gone; choose it again");
    const { id } = await core.sendFile(chat, { ...info, size: blob.size }, caption);
    await renameBlob(OUTGOING, key, id);
    show({ id, direction: "up", done: 0, total: blob.size, state: "waiting", reason: null });
    return id;
  } catch (err) {
    await deleteBlob(OUTGOING, key).catch((err) => theHost().report(err));
    throw err;
  } finally {
    handing.delete(wait);
    handed();
  }
}

/**
 * An order from the core (host.transfer).
 * @param {() => Core | undefined} core
 * @param {Transfer} order
 */
export function onTransfer(core, order) {
  const c = core();
  if (!c) return;
  switch (order.kind) {
    case "upload":
      abort(order.id);
      upload(c, order).catch((err) => theHost().report(err));
      return;
    case "download":
      if (active.has(order.id)) return; // already on its way
      download(c, order).catch((err) => theHost().report(err));
      return;
    case "uploadStopped":
      abort(order.id);
      show({ ...blank(order.id, "up"), state: "failed", reason: order.reason });
      return;
    case "downloadFailed":
      // A file this device is sending has nothing to fetch: its upload goes on.
      if (progress.get(order.id)?.direction === "up") return;
      abort(order.id);
      show({ ...blank(order.id, "down"), state: "failed", reason: order.reason });
      return;
  }
}

/**
 * The user cancels a file being sent.
 * @param {Core} core
 * @param {string} id
 */
export async function cancelUpload(core, id) {
  abort(id);
  await core.cancelUpload(id);
}

/**
 * The user tries a stopped upload again.
 * @param {Core} core
 * @param {string} id
 */
export async function retryUpload(core, id) {
  tries.delete(id);
  show({ ...blank(id, "up"), state: "waiting" });
  await core.retryUpload(id);
}

/**
 * The popup's file requests, answered the same way by both hosts (the
 * extension's worker and the web app's page).
 * @param {Core} core
 * @param {Extract<import("./messages.js").PopupRequest, { kind: "sendFile" | "cancelUpload" | "retryUpload" | "discardUpload" | "downloadFile" }>} msg
 */
export async function fileRequest(core, msg) {
  switch (msg.kind) {
    case "sendFile":
      await sendFile(core, msg.chat, msg.key, msg.info, msg.caption);
      return;
    case "cancelUpload":
      return cancelUpload(core, msg.id);
    case "retryUpload":
      return retryUpload(core, msg.id);
    case "discardUpload":
      await core.discardUpload(msg.id);
      return deleteBlob(OUTGOING, msg.id);
    case "downloadFile":
      return core.downloadFile(msg.id);
  }
}

/**
 * Outgoing files no upload needs any more (a worker stop between the
 * popup's write and the message): removed on boot.
 * @param {Core} core
 */
export async function sweepOutgoing(core) {
  const wanted = new Set(core.uploads().map((u) => u.id));
  for (const key of await keys(OUTGOING)) {
    if (!wanted.has(key) && !key.startsWith("pending-")) await deleteBlob(OUTGOING, key);
  }
}

// ------------------------------------------------------------ internals

/** @param {string} id @param {"up" | "down"} direction @returns {Progress} */
function blank(id, direction) {
  return progress.get(id) || { id, direction, done: 0, total: 0, state: "waiting", reason: null };
}

/** @param {Progress} p */
function show(p) {
  if (p.state === "done") progress.delete(p.id);
  else progress.set(p.id, p);
  theHost().show(p);
}

/** @param {string} id */
function abort(id) {
  active.get(id)?.abort();
  active.delete(id);
}

/**
 * AES-GCM parameters of chunk `index` (the core's nonce and associated data).
 * @param {number} index
 * @param {boolean} last
 * @returns {AesGcmParams}
 */
function params(index, last) {
  const { mediaNonce, mediaAad } = theHost().media;
  return { name: "AES-GCM", iv: /** @type {Uint8Array<ArrayBuffer>} */ (mediaNonce(index)), additionalData: /** @type {Uint8Array<ArrayBuffer>} */ (mediaAad(index, last)) };
}

/** @param {string} hex */
function fromHex(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * The server's refusal as a TransferError (§14.3: JSON `{code, message}`).
 * @param {Response} resp
 */
async function refusal(resp) {
  /** @type {{ code?: string, message?: string }} */
  let body = {};
  try {
    body = await resp.json();
  } catch {
    // not JSON: the status says enough
  }
  const message = body.message || `HTTP ${resp.status}`;
  // An expired token, an offset out of step, a server in trouble: a new
  // ticket says where to go on. Anything else is the file's fate.
  const retry = resp.status === 401 || resp.status === 409 || resp.status >= 500;
  const offset = resp.headers.get("Upload-Offset");
  return new TransferError(message, retry, offset !== null && /^\d+$/.test(offset) ? Number(offset) : null);
}

/**
 * Encrypts the file of `order.id` from its start (to feed the digest) and
 * uploads from the server's offset on.
 * @param {Core} core
 * @param {UploadOrder} order
 */
async function upload(core, order) {
  const { id } = order;
  const ctl = new AbortController();
  active.set(id, ctl);
  await Promise.all([...handing]);
  const blob = await getBlob(OUTGOING, id);
  if (ctl.signal.aborted) return;
  if (!blob || blob.size !== order.size) {
    active.delete(id);
    await core.discardUpload(id);
    show({ ...blank(id, "up"), state: "failed", reason: "The file is no longer in this browser; send it again." });
    return;
  }
  const { mediaChunkSize, BlobHasher } = theHost().media;
  const C = mediaChunkSize();
  const size = blob.size;
  const n = Math.floor(size / C) + 1;
  const hasher = new BlobHasher();
  let hashed = false;
  let offset = order.offset;
  const started = offset;
  show({ id, direction: "up", done: offset, total: order.length, state: "sending", reason: null });
  try {
    const key = await crypto.subtle.importKey("raw", fromHex(order.key), "AES-GCM", false, ["encrypt"]);
    let pos = 0;
    /** @type {Uint8Array[]} */
    let batch = [];
    let batchLen = 0;
    for (let i = 0; i < n; i++) {
      if (ctl.signal.aborted) return;
      const last = i === n - 1;
      const plain = await blob.slice(i * C, last ? size : (i + 1) * C).arrayBuffer();
      const ct = new Uint8Array(
        await crypto.subtle.encrypt(params(i, last), key, plain),
      );
      hasher.update(ct);
      const start = pos;
      pos += ct.length;
      if (pos <= offset) continue; // the server has this chunk: hashed only
      const piece = start >= offset ? ct : ct.subarray(offset - start);
      batch.push(piece);
      batchLen += piece.length;
      if (batchLen >= PATCH_BYTES || last) {
        offset = await patchFrom(order, offset, batch, pos, ctl.signal);
        batch = [];
        batchLen = 0;
        tries.delete(id);
        show({ id, direction: "up", done: offset, total: order.length, state: "sending", reason: null });
      }
    }
    if (offset !== order.length) throw new TransferError("the server holds fewer bytes than were sent", true);
    hashed = true;
    const digest = hasher.finish();
    await core.uploadFinished(id, digest);
    // Sent: the file stays for display, under the received files.
    await renameBlob(OUTGOING, id, id).then(async () => {
      await putBlob(FILES, id, blob);
      await deleteBlob(OUTGOING, id);
    });
    tries.delete(id);
    show({ id, direction: "up", done: order.length, total: order.length, state: "done", reason: null });
  } catch (err) {
    if (ctl.signal.aborted) return;
    await interrupted(core, id, err, offset > started);
  } finally {
    if (!hashed) hasher.free();
    if (active.get(id) === ctl) active.delete(id);
  }
}

/**
 * PATCHes `pieces`, the blob's bytes from `offset` to `end`; the server's
 * new offset. Where the server holds more than the ticket said (a PATCH of
 * an earlier try kept bytes after the ticket was written, §14.3), it goes
 * on from the server's offset; where it holds less, the error goes up and
 * a new ticket starts over.
 * @param {UploadOrder} order
 * @param {number} offset
 * @param {Uint8Array[]} pieces
 * @param {number} end
 * @param {AbortSignal} signal
 * @returns {Promise<number>}
 */
async function patchFrom(order, offset, pieces, end, signal) {
  let body = new Blob(/** @type {BlobPart[]} */ (pieces));
  for (;;) {
    try {
      return await patch(order, offset, body, signal);
    } catch (err) {
      const at = err instanceof TransferError ? err.offset : null;
      if (at === null || at <= offset) throw err;
      if (at >= end) return at; // the chunks up to `at` are hashed only
      body = body.slice(at - offset);
      offset = at;
    }
  }
}

/**
 * One PATCH of `body` at `offset`; the server's new offset.
 * @param {UploadOrder} order
 * @param {number} offset
 * @param {Blob} body
 * @param {AbortSignal} signal
 * @returns {Promise<number>}
 */
async function patch(order, offset, body, signal) {
  const resp = await fetch(order.url, {
    method: "PATCH",
    headers: {
      Authorization: `Bearer ${order.token}`,
      "Upload-Offset": String(offset),
      "Content-Type": "application/offset+octet-stream",
    },
    body,
    signal,
    cache: "no-store",
  });
  if (resp.status !== 204 && resp.status !== 200) throw await refusal(resp);
  const next = Number(resp.headers.get("Upload-Offset"));
  if (!Number.isFinite(next) || next <= offset) throw new TransferError("the server did not take the bytes", true);
  return next;
}

/**
 * An upload broke off: a new ticket (after a pause), or, after too many
 * tries in a row or a refusal, it stops and shows why.
 * @param {Core} core
 * @param {string} id
 * @param {unknown} err
 * @param {boolean} progressed
 */
async function interrupted(core, id, err, progressed) {
  const retry = !(err instanceof TransferError) || err.retry; // network errors are TypeErrors
  const n = progressed ? 1 : (tries.get(id) || 0) + 1;
  tries.set(id, n);
  const reason = errorMessage(err);
  if (retry && n < MAX_TRIES) {
    show({ ...blank(id, "up"), state: "waiting", reason: null });
    await new Promise((r) => setTimeout(r, 500 * n));
    await core.uploadInterrupted(id);
    return;
  }
  tries.delete(id);
  await core.cancelUpload(id);
  show({ ...blank(id, "up"), state: "failed", reason: `Not sent: ${reason}` });
}

/**
 * Fetches, checks and decrypts the file of `order.id` as it streams in,
 * then keeps it (IndexedDB) and tells the core.
 * @param {Core} core
 * @param {DownloadOrder} order
 */
async function download(core, order) {
  const { id, file } = order;
  if (await getBlob(FILES, id)) {
    show({ id, direction: "down", done: order.length, total: order.length, state: "done", reason: null });
    return;
  }
  const ctl = new AbortController();
  active.set(id, ctl);
  const { mediaChunkSize, BlobHasher } = theHost().media;
  const C = mediaChunkSize();
  const size = file.size;
  const n = Math.floor(size / C) + 1;
  const lastLen = (size % C) + TAG;
  const hasher = new BlobHasher();
  let hashed = false;
  /** Decrypted chunks (Blobs: kept by the browser, not on the JS heap). @type {Blob[]} */
  const parts = [];
  let index = 0;
  let have = 0; // blob bytes decrypted (whole chunks)
  let reported = 0;
  const buf = new Uint8Array(C + TAG);
  show({ id, direction: "down", done: 0, total: order.length, state: "sending", reason: null });
  try {
    const key = await crypto.subtle.importKey("raw", fromHex(file.key), "AES-GCM", false, ["decrypt"]);
    /** @param {Uint8Array} ct @param {boolean} last */
    const chunk = async (ct, last) => {
      hasher.update(ct);
      let plain;
      try {
        plain = await crypto.subtle.decrypt(params(index, last), key, /** @type {Uint8Array<ArrayBuffer>} */ (ct));
      } catch {
        throw new TransferError(`the file is damaged (chunk ${index} does not decrypt)`, false);
      }
      parts.push(new Blob([plain]));
      have += ct.length;
      index += 1;
      if (have - reported >= REPORT_EVERY || last) {
        reported = have;
        show({ id, direction: "down", done: have, total: order.length, state: "sending", reason: null });
      }
    };
    for (let attempt = 0; index < n; attempt++) {
      if (attempt >= MAX_TRIES) throw new TransferError("the download keeps breaking off", false);
      /** @type {Record<string, string>} */
      const headers = { Authorization: `Bearer ${order.token}` };
      if (have > 0) headers.Range = `bytes=${have}-`;
      let resp;
      try {
        resp = await fetch(order.url, { headers, signal: ctl.signal, cache: "no-store" });
      } catch (err) {
        if (ctl.signal.aborted) throw err;
        await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
        continue;
      }
      if (resp.status !== 200 && resp.status !== 206) throw await refusal(resp);
      if (have > 0 && resp.status === 200) throw new TransferError("the server ignored the range", false);
      if (!resp.body) throw new TransferError("empty answer", false);
      const reader = resp.body.getReader();
      let fill = 0;
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          let v = value;
          while (v.length) {
            const take = Math.min(buf.length - fill, v.length);
            buf.set(v.subarray(0, take), fill);
            fill += take;
            v = v.subarray(take);
            if (index < n - 1 && fill === buf.length) {
              await chunk(buf, false);
              fill = 0;
            } else if (index === n - 1 && fill > lastLen) {
              throw new TransferError("the server sent more bytes than the file has", false);
            }
          }
        }
      } catch (err) {
        if (err instanceof TransferError || ctl.signal.aborted) throw err;
        continue; // the stream broke off: go on by Range from the last whole chunk
      }
      if (index === n - 1 && fill === lastLen) await chunk(buf.subarray(0, fill), true);
    }
    hashed = true;
    if (hasher.finish() !== file.digest.toLowerCase()) {
      throw new TransferError("the file is damaged (its digest does not match)", false);
    }
    await putBlob(FILES, id, new Blob(parts, { type: file.mimeType || "application/octet-stream" }));
    await core.downloadFinished(id);
    show({ id, direction: "down", done: order.length, total: order.length, state: "done", reason: null });
  } catch (err) {
    if (ctl.signal.aborted) return;
    show({ id, direction: "down", done: have, total: order.length, state: "failed", reason: errorMessage(err) });
  } finally {
    if (!hashed) hasher.free();
    if (active.get(id) === ctl) active.delete(id);
  }
}
