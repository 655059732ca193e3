// @ts-check
// Small DOM helpers shared by every screen: element lookup and creation,
// localised strings, accessible labels and avatars.

import { message } from "./i18n.js";
import { icon, isIcon } from "./icons.js";

/**
 * The element with this id (the markup in popup.html defines them all).
 * @param {string} id
 * @returns {HTMLElement}
 */
export function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`popup.html has no #${id}`);
  return el;
}

/** @param {string} id */
export const $input = (id) => /** @type {HTMLInputElement} */ ($(id));
/** @param {string} id */
export const $button = (id) => /** @type {HTMLButtonElement} */ ($(id));
/** @param {string} id */
export const $textarea = (id) => /** @type {HTMLTextAreaElement} */ ($(id));

/**
 * A localised string; a missing key shows as the key itself so it is easy to spot.
 * @param {string} key
 * @param {...(string | number)} subs
 */
export function t(key, ...subs) {
  return message(key, subs.map(String)) || key;
}

/** @typedef {Node | string | null | undefined | false} Child */

/**
 * Creates an element: `h("span", {class: "x"}, "text", child)`. Attributes
 * that are null, undefined or false are left out; `on…` adds a listener.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = String(v);
    // Through the CSSOM: a page whose CSP has no 'unsafe-inline' styles
    // (the web app) refuses style attributes, not style properties.
    else if (k === "style") el.style.cssText = String(v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), /** @type {EventListener} */ (v));
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/**
 * Sets a control's accessible name and tooltip.
 * @param {Element} el
 * @param {string} text
 */
export function label(el, text) {
  el.setAttribute("aria-label", text);
  if (el instanceof HTMLElement || el instanceof SVGElement) el.setAttribute("title", text);
}

/** Fills the static markup's strings and icons. */
export function localise() {
  for (const el of document.querySelectorAll("[data-i18n]")) {
    el.textContent = t(/** @type {HTMLElement} */ (el).dataset.i18n ?? "");
  }
  for (const el of document.querySelectorAll("[data-i18n-label]")) {
    label(el, t(/** @type {HTMLElement} */ (el).dataset.i18nLabel ?? ""));
  }
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) {
    const input = /** @type {HTMLInputElement} */ (el);
    input.placeholder = t(input.dataset.i18nPlaceholder ?? "");
  }
  for (const el of document.querySelectorAll("[data-icon]")) {
    const name = /** @type {HTMLElement} */ (el).dataset.icon;
    // A misspelt name would draw an empty shape: say so where it shows.
    if (isIcon(name)) el.prepend(icon(name));
    else console.error(`popup: no icon named ${name}`);
  }
  const mac = /Mac|iPhone|iPad/.test(navigator.platform);
  $("search-kbd").textContent = mac ? "⌘K" : "Ctrl K";
}

/**
 * A sentence with inline parts (`<code>`, `<strong>`): the message is fetched
 * with markers in place of its substitutions and split on them.
 * @param {string} key
 * @param {...Node} parts
 * @returns {(Node | string)[]}
 */
export function richLine(key, ...parts) {
  const marks = parts.map((_, i) => `\u0001${i}\u0001`);
  const text = t(key, ...marks);
  /** @type {(Node | string)[]} */
  const out = [];
  for (const piece of text.split("\u0001")) {
    const part = /^\d+$/.test(piece) ? parts[Number(piece)] : undefined;
    if (part !== undefined) out.push(part);
    else if (piece) out.push(piece);
  }
  return out;
}

const HUES = [168, 205, 232, 262, 292, 330, 14, 38];

/**
 * The colour of a handle (or a group's chat): the same hue every time, for
 * its avatar and, in a group, the sender's name above its messages.
 * @param {string} handle
 */
export function hueOf(handle) {
  let hash = 0;
  for (const ch of handle) hash = (hash * 31 + (ch.codePointAt(0) ?? 0)) >>> 0;
  return HUES[hash % HUES.length];
}

/** What an avatar stands for: a person, a group, or the note to self. @typedef {"person" | "group" | "note"} AvatarKind */

/**
 * A round avatar with the name's first letter, its colour picked from the
 * handle; a group's shows a group sign instead of a letter, the note to
 * self's a bookmark.
 * @param {string} name
 * @param {string} handle
 * @param {"" | "sm" | "lg"} [size]
 * @param {boolean | AvatarKind} [kind] a group's when true
 */
export function avatar(name, handle, size = "", kind = false) {
  const k = kind === true ? "group" : kind || "person";
  const initial = ([...name.trim()][0] ?? "?").toUpperCase();
  const cls = `avatar ${size}${k === "group" ? " is-group" : ""}${k === "note" ? " is-note" : ""}`.trim();
  return h("span", { class: cls, style: k === "note" ? null : `--hue:${hueOf(handle)}`, "aria-hidden": "true" }, k === "group" ? icon("users") : k === "note" ? icon("bookmark") : initial);
}

/**
 * Repaints an avatar already in the markup.
 * @param {HTMLElement} el
 * @param {string} name
 * @param {string} handle
 * @param {boolean | AvatarKind} [kind] a group's when true
 */
export function paintAvatar(el, name, handle, kind = false) {
  const a = avatar(name, handle, "", kind);
  el.replaceChildren(...a.childNodes);
  el.classList.toggle("is-group", a.classList.contains("is-group"));
  el.classList.toggle("is-note", a.classList.contains("is-note"));
  el.style.cssText = a.style.cssText;
}

/**
 * `fn`, run once before the next frame however often it is asked for
 * meanwhile: a burst of snapshots (a wake that refreshes 500 contacts, a
 * history arriving) costs one paint of the chat list, not one each.
 * @param {() => void} fn
 * @returns {() => void}
 */
export function onceAFrame(fn) {
  let asked = false;
  return () => {
    if (asked) return;
    asked = true;
    requestAnimationFrame(() => {
      asked = false;
      fn();
    });
  };
}

let toastTimer = 0;

/**
 * A short message at the bottom; errors stay longer and are announced as alerts.
 * @param {string} text
 * @param {boolean} [isError]
 */
export function toast(text, isError = false) {
  const el = $("toast");
  el.textContent = text;
  el.classList.toggle("error", isError);
  el.setAttribute("role", isError ? "alert" : "status");
  el.hidden = false;
  el.classList.remove("out");
  clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => {
    el.classList.add("out");
    toastTimer = window.setTimeout(() => (el.hidden = true), 200);
  }, isError ? 6000 : 2600);
}

/**
 * A fingerprint as the core formats it (`abcd-ef01-…`, 8 groups), laid out
 * on two lines of four groups (the text is not changed otherwise).
 * @param {string} fp
 */
export function fingerprintLines(fp) {
  const groups = fp.split("-");
  if (groups.length !== 8) return fp;
  return `${groups.slice(0, 4).join("-")}\n${groups.slice(4).join("-")}`;
}
