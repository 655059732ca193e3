// @ts-check
// The web app's `popup/i18n.js` (cargo xtask build copies this file over
// the popup's in dist/app): the popup's strings from the same
// _locales/<lang>/messages.json the extension ships, read with fetch
// (there is no chrome.i18n in a web page), with chrome.i18n's rules for
// placeholders.

/** @typedef {{ message: string, placeholders?: Record<string, { content: string }> }} Entry */

/** @type {Record<string, Entry>} */
const messages = await fetch(new URL("../_locales/en/messages.json", import.meta.url))
  .then((r) => (r.ok ? r.json() : {}))
  .catch(() => ({}));

/**
 * The message `key` with its `$1`… placeholders filled; "" if unknown.
 * @param {string} key
 * @param {string[]} subs
 * @returns {string}
 */
export function message(key, subs) {
  const entry = messages[key];
  if (!entry) return "";
  const fill = (/** @type {string} */ text) => text.replace(/\$(\d)/g, (_, n) => subs[Number(n) - 1] ?? "");
  return entry.message.replace(/\$([A-Za-z0-9_@]+)\$/g, (whole, name) => {
    const ph = Object.entries(entry.placeholders ?? {}).find(([k]) => k.toLowerCase() === name.toLowerCase());
    return ph ? fill(ph[1].content) : whole;
  }).replace(/\$\$/g, "$");
}

/** The browser's UI language. @returns {string | undefined} */
export function uiLanguage() {
  return navigator.language || undefined;
}
