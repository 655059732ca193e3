// @ts-check
// The popup's one connection to the worker: a runtime Port named PORT_NAME.
// Commands go out as PopupRequest, snapshots and replies come back as
// WorkerMessage (both defined in common/messages.js). When the worker goes
// away (Chrome stops idle workers), the Port reconnects with backoff.

import { PORT_NAME } from "../common/messages.js";
import { t, toast } from "./dom.js";

/** @typedef {import("../common/messages.js").PopupRequest} PopupRequest */
/** @typedef {import("../common/messages.js").WorkerMessage} WorkerMessage */

/** @type {chrome.runtime.Port | null} */
let port = null;
let reconnectTimer = 0;
/** Reconnects in a row without hearing back, for the backoff. */
let reconnects = 0;

/** @type {(msg: WorkerMessage) => void} */
let onMessage = () => {};
/** @type {() => void} */
let onReconnect = () => {};

/**
 * Opens the Port. `message` gets everything the worker sends; `reconnected`
 * runs after the worker went away and the Port was opened again, to ask for
 * what the view shows.
 * @param {{ message: (msg: WorkerMessage) => void, reconnected: () => void }} handlers
 */
export function start(handlers) {
  onMessage = handlers.message;
  onReconnect = handlers.reconnected;
  open();
}

function open() {
  try {
    port = chrome.runtime.connect({ name: PORT_NAME });
  } catch {
    port = null; // the extension was reloaded: this page is orphaned
    return;
  }
  port.onMessage.addListener((/** @type {WorkerMessage} */ msg) => {
    reconnects = 0;
    onMessage(msg);
  });
  port.onDisconnect.addListener(() => {
    void chrome.runtime.lastError; // read, so Chrome doesn't log it as unchecked
    port = null;
    // The worker went away (stopped or restarted): come back and ask again.
    clearTimeout(reconnectTimer);
    reconnectTimer = window.setTimeout(() => {
      open();
      onReconnect();
    }, Math.min(5000, 200 * 2 ** reconnects++));
  });
}

/**
 * Sends one command to the worker.
 * @param {PopupRequest} msg
 */
export function post(msg) {
  // A Port whose worker just stopped throws: open a new one and try once more.
  if (!send(msg) && !send(msg)) toast(t("errorWorker"), true);
}

/**
 * Posts on the open Port (opening one if there is none).
 * @param {PopupRequest} msg
 * @returns {boolean} whether it went
 */
function send(msg) {
  if (!port) open();
  try {
    port?.postMessage(msg);
    return true;
  } catch {
    port = null;
    return false;
  }
}
