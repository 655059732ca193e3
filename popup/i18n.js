// @ts-check
// Where the popup's strings and language come from: chrome.i18n (the
// extension's _locales). The phone web app, which reuses the popup's
// screens, ships its own module in this place (app/popup-i18n.js, copied
// over this one in dist/app) that reads the same _locales files.

/**
 * The message `key` with its `$1`… placeholders filled; "" if unknown.
 * @param {string} key
 * @param {string[]} subs
 * @returns {string}
 */
export function message(key, subs) {
  return chrome.i18n.getMessage(key, subs);
}

/** The browser's UI language, or undefined for the default. @returns {string | undefined} */
export function uiLanguage() {
  return chrome.i18n.getUILanguage?.() || undefined;
}
