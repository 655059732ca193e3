// @ts-check
// The account's devices as the server lists them: platform, name, when
// linked, last active; "Log out" on any companion (asked twice). The
// 14-day and 30-day rules are in the markup, in words.

import { ready } from "../engine.js";
import { app, el, errorText, render } from "../state.js";
import { platformLabel } from "./link.js";

/** @typedef {NonNullable<NonNullable<import("../../wasm/tether_app.js").Snapshot["primary"]>["devices"]>[number]} Device */

const SVG_NS = "http://www.w3.org/2000/svg";
/** Outline pictures of a phone and a computer (24 × 24, stroked). */
const PICTURES = {
  phone: ["M7 2h10a2 2 0 0 1 2 2v16a2 2 0 0 1-2 2H7a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2z", "M11 18h2"],
  computer: ["M5 4h14a2 2 0 0 1 2 2v9a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V6a2 2 0 0 1 2-2z", "M2 20h20"],
};

/** @param {keyof typeof PICTURES} which */
function picture(which) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  for (const [k, v] of Object.entries({ fill: "none", stroke: "currentColor", "stroke-width": "1.8", "stroke-linecap": "round", "stroke-linejoin": "round" })) svg.setAttribute(k, v);
  for (const d of PICTURES[which]) {
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

const dateFmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" });
const relFmt = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

/**
 * "5 minutes ago", "yesterday"…
 * @param {number} ms
 */
function ago(ms) {
  const s = Math.round((ms - Date.now()) / 1000);
  if (s > -60) return "just now";
  for (const [unit, secs] of /** @type {const} */ ([["day", 86400], ["hour", 3600], ["minute", 60]])) {
    if (-s >= secs) return relFmt.format(Math.round(s / secs), unit);
  }
  return "just now";
}

/** The list was asked for and has not arrived yet. */
let asked = false;

export function enterDevices() {
  app.confirmLogout = null;
  asked = false;
}

/** Asks the server for the list once connected (again after it changed). */
function askOnce() {
  if (asked || app.snap?.connection !== "connected") return;
  asked = true;
  ready.then((core) => core.requestDevices()).catch((err) => {
    asked = false;
    el("devices-list").replaceChildren(row("devices-error", errorText(err)));
  });
}

/**
 * @param {string} cls
 * @param {string} text
 */
function row(cls, text) {
  const li = document.createElement("li");
  li.className = `row ${cls}`;
  li.textContent = text;
  return li;
}

/**
 * @param {Device} d
 */
function deviceRow(d) {
  const li = document.createElement("li");
  li.className = "row device";
  li.dataset.device = String(d.deviceId);
  const icon = document.createElement("span");
  icon.className = "device-icon";
  icon.append(picture(d.current ? "phone" : "computer"));
  icon.setAttribute("aria-hidden", "true");
  const text = document.createElement("div");
  text.className = "grow";
  const name = document.createElement("p");
  name.className = "strong";
  name.textContent = d.current ? `${d.name || "This phone"} (this phone)` : d.name || platformLabel(d.platform);
  const facts = document.createElement("p");
  facts.className = "muted small";
  const active = d.current ? "active now" : d.lastActiveMs ? `last active ${ago(d.lastActiveMs)}` : "not active yet";
  facts.textContent = `${platformLabel(d.platform)} · linked ${dateFmt.format(d.linkedAtMs)} · ${active}`;
  text.append(name, facts);
  li.append(icon, text);
  if (!d.current && d.deviceId !== 0) {
    const asking = app.confirmLogout === d.deviceId;
    const button = document.createElement("button");
    button.type = "button";
    button.className = asking ? "btn small danger logout-confirm" : "btn small danger-ghost logout";
    button.textContent = asking ? "Log out?" : "Log out";
    button.setAttribute("aria-label", asking ? `Confirm: log out ${name.textContent}` : `Log out ${name.textContent}`);
    button.addEventListener("click", () => (asking ? logout(d.deviceId) : ask(d.deviceId)));
    li.append(button);
  }
  return li;
}

/** @param {number} id */
function ask(id) {
  app.confirmLogout = id;
  render();
}

/** @param {number} id */
async function logout(id) {
  app.confirmLogout = null;
  try {
    await (await ready).removeDevice(id);
  } catch (err) {
    el("devices-list").prepend(row("devices-error", errorText(err)));
    return;
  }
  render();
}

export function renderDevices() {
  const list = el("devices-list");
  const devices = app.snap?.primary?.devices;
  if (!devices) {
    askOnce();
    list.setAttribute("aria-busy", "true");
    list.replaceChildren(row("muted", app.snap?.connection === "connected" ? "Asking the server…" : "Connecting to the server…"));
    return;
  }
  asked = false;
  list.removeAttribute("aria-busy");
  const sorted = [...devices].sort((a, b) => Number(b.current) - Number(a.current) || a.linkedAtMs - b.linkedAtMs);
  list.replaceChildren(...sorted.map(deviceRow));
  if (sorted.length <= 1) list.append(row("muted small", "No browser is linked yet."));
}

export function wireDevices() {
  el("devices-link").addEventListener("click", () => {
    app.overlay = "link";
    render();
  });
}
