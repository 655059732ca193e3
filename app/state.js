// @ts-check
// What the web app's own screens remember: which one is open and what is
// typed or shown there (view state only). Domain state (the account, the
// link request, the devices) arrives in the core's snapshot.

/** @typedef {import("../wasm/tether_app.js").Snapshot} Snapshot */

/**
 * The web app's own screens; the chat screens are the popup's.
 * @typedef {"starting" | "welcome" | "register" | "phrase" | "phrase-confirm" | "restore" | "link" | "link-code" | "link-confirm" | "link-progress" | "devices" | "chats"} AppScreen
 */

export const app = {
  /** The core's latest snapshot. @type {Snapshot | null} */
  snap: null,
  /** Before an account: the flow the person chose. @type {"welcome" | "register" | "restore"} */
  start: "welcome",
  /** A registration was sent; waiting for the server. */
  registering: false,
  /** A restore was sent; waiting for the server. */
  restoring: false,
  /** After registering: the phrase to show, then to check (null: not in that flow). @type {{ words: string[], ask: number[], confirming: boolean, error: string | null } | null} */
  phrase: null,
  /** An overlay over the chats: linking a device, or the devices list. @type {"link" | "link-code" | "devices" | null} */
  overlay: null,
  /** The last link-scan problem shown under the camera. @type {string | null} */
  scanProblem: null,
  /** The device whose "Log out" waits for a second tap. @type {number | null} */
  confirmLogout: null,
};

/** @type {() => void} */
let painter = () => {};

/** @param {() => void} fn */
export function onRender(fn) {
  painter = fn;
}

/** Paints the screen the state calls for. */
export function render() {
  painter();
}

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
export function el(id) {
  const found = document.getElementById(id);
  if (!found) throw new Error(`index.html has no #${id}`);
  return found;
}

/** @param {string} id */
export const input = (id) => /** @type {HTMLInputElement} */ (el(id));

/**
 * Shows an error line (hidden when `text` is empty).
 * @param {string} id
 * @param {string | null | undefined} text
 */
export function showError(id, text) {
  const node = el(id);
  node.textContent = text ?? "";
  node.hidden = !text;
}

/** @param {unknown} err */
export function errorText(err) {
  return err instanceof Error ? err.message : String(err);
}
