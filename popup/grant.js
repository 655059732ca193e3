// @ts-check
// "Send the image itself?": the window the worker opens the first time an
// image from a site is sent from the context menu (background/imageshare.js
// says why a window). Allow asks the browser for the site's host
// permission (this click is the user gesture the request needs; called
// before any await, as Firefox requires); either answer goes back to the
// worker, which sends the image or, refused, its link.

import { label, richLine, t } from "./dom.js";

/** @typedef {import("../background/pages.js").PageRequest} PageRequest */
/** @typedef {import("../background/pages.js").PageReply} PageReply */

const params = new URLSearchParams(location.search);
const id = params.get("id") || "";
const origin = params.get("origin") || "";
const site = origin.replace(/^https?:\/\//, "").replace(/\/\*$/, "");

/** @param {string} id */
const btn = (id) => /** @type {HTMLButtonElement} */ (document.getElementById(id));
/** @param {string} text @param {boolean} [error] */
function status(text, error = false) {
  const s = /** @type {HTMLElement} */ (document.getElementById("grant-status"));
  s.textContent = text;
  s.classList.toggle("error", error);
}

/**
 * Tells the worker and shows what it did.
 * @param {boolean} granted
 */
async function answer(granted) {
  btn("grant-allow").disabled = true;
  btn("grant-link").disabled = true;
  status(t("voiceSending"));
  try {
    /** @type {PageRequest} */
    const req = { kind: "imageAnswer", id, granted };
    /** @type {PageReply} */
    const reply = await chrome.runtime.sendMessage(req);
    if (!reply?.ok) throw new Error(reply?.error || t("errorWorker"));
    const outcome = reply.outcome;
    if (outcome?.sent === "link") status(granted ? t("imageLinkInstead", outcome.reason) : t("imageLinkSent"));
    else status(t("imageSent"));
    setTimeout(() => window.close(), granted && outcome?.sent === "image" ? 600 : 1800);
  } catch (err) {
    status(err instanceof Error ? err.message : String(err), true);
  }
}

for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(/** @type {HTMLElement} */ (e).dataset.i18n ?? "");
document.title = t("imageAskTitle");
const strong = document.createElement("strong");
strong.textContent = site;
/** @type {HTMLElement} */ (document.getElementById("grant-text")).append(...richLine("imageAskText", strong));
label(btn("grant-allow"), t("imageAskAllow"));
btn("grant-allow").addEventListener("click", () => {
  // No await before this call: the click's gesture must still hold.
  chrome.permissions.request({ origins: [origin] }).then(
    (granted) => answer(granted),
    () => answer(false),
  );
});
btn("grant-link").addEventListener("click", () => answer(false));
