// @ts-check
// The web app's `popup/port.js` (cargo xtask build copies this file over
// the popup's in dist/app): the same exports, but "the worker" is the core
// in this page (router.js) instead of a runtime Port. The popup's screens
// import it unchanged.

import { attach, request } from "../app/router.js";

/** @typedef {import("../common/messages.js").PopupRequest} PopupRequest */
/** @typedef {import("../common/messages.js").WorkerMessage} WorkerMessage */

/**
 * Starts delivering what the core says. `reconnected` never runs: the
 * core lives as long as the page.
 * @param {{ message: (msg: WorkerMessage) => void, reconnected: () => void }} handlers
 */
export function start(handlers) {
  attach(handlers.message);
}

/**
 * Sends one command to the core.
 * @param {PopupRequest} msg
 */
export function post(msg) {
  request(msg);
}
