// @ts-check
// One-shot requests from the extension's small windows, over
// chrome.runtime.sendMessage with a reply: the voice recorder
// (popup/record.html) hands over a recorded note, the image permission
// window (popup/grant.html) its answer. Only this extension's own pages
// under popup/ are heard. (The popup's Port and its schema,
// common/messages.js, stay as they are: these pages need one answer each,
// not a stream of snapshots.)

import { ready } from "./core.js";
import { errorMessage } from "./log.js";
import { imageAnswer } from "./imageshare.js";
import { sendFile } from "./transfer.js";

/**
 * What a page asks.
 * @typedef {(
 *   | { kind: "sendFile", chat: string, key: string, info: import("../wasm/tether_core.js").FileInfo }
 *   | { kind: "imageAnswer", id: string, granted: boolean }
 * )} PageRequest
 */
/**
 * The answer: done (with the message id, or what was sent instead), or why not.
 * @typedef {{ ok: true, id?: string, outcome?: import("./imageshare.js").ImageOutcome } | { ok: false, error: string }} PageReply
 */

/**
 * chrome.runtime.onMessage listener.
 * @param {unknown} msg
 * @param {chrome.runtime.MessageSender} sender
 * @param {(reply: PageReply) => void} respond
 * @returns {boolean} true when it will answer
 */
export function onPageMessage(msg, sender, respond) {
  if (sender.id !== chrome.runtime.id || !sender.url?.startsWith(chrome.runtime.getURL("popup/"))) return false;
  const req = /** @type {PageRequest} */ (msg);
  if (req?.kind !== "sendFile" && req?.kind !== "imageAnswer") return false;
  ready
    .then((core) => handle(core, req))
    .then(respond, (err) => respond({ ok: false, error: errorMessage(err) }));
  return true;
}

/**
 * @param {import("../wasm/tether_core.js").Core} core
 * @param {PageRequest} req
 * @returns {Promise<PageReply>}
 */
async function handle(core, req) {
  switch (req.kind) {
    case "sendFile":
      return { ok: true, id: await sendFile(core, String(req.chat), String(req.key), req.info, "") };
    case "imageAnswer":
      return { ok: true, outcome: await imageAnswer(core, String(req.id), !!req.granted) };
  }
}
