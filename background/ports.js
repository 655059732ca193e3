// @ts-check
// The popups' Ports and the chat each has open.

/** @typedef {import("../common/messages.js").WorkerMessage} WorkerMessage */

/** @type {Map<chrome.runtime.Port, string | null>} */
export const ports = new Map();

/** How many of its open chat's latest messages each popup shows (see CHAT_PAGE). @type {Map<chrome.runtime.Port, number>} */
export const pages = new Map();

/**
 * @param {chrome.runtime.Port} port
 * @param {WorkerMessage} msg
 */
export function post(port, msg) {
  try {
    port.postMessage(msg);
  } catch {
    ports.delete(port); // the popup closed meanwhile
    pages.delete(port);
  }
}
