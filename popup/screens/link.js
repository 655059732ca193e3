// @ts-check
// Not linked: the QR code or the pairing code the core made, a countdown to
// its expiry, and how to use it on the primary device.

import { $, h, richLine, t } from "../dom.js";
import { clock } from "../format.js";
import { post } from "../port.js";
import { data, ui } from "../state.js";

/** @typedef {NonNullable<import("../state.js").Snapshot["link"]>} LinkView */

/**
 * Parses the core's QR SVG (trusted, but still only ever inserted as SVG nodes).
 * @param {string} svgText
 * @returns {SVGSVGElement | null}
 */
export function qrNode(svgText) {
  const doc = new DOMParser().parseFromString(svgText, "image/svg+xml");
  const root = /** @type {Element} */ (doc.documentElement);
  if (root.nodeName !== "svg" || doc.querySelector("parsererror")) return null;
  for (const bad of root.querySelectorAll("script, foreignObject")) bad.remove();
  for (const el of [root, ...root.querySelectorAll("*")]) {
    for (const attr of [...el.attributes]) if (/^on/i.test(attr.name)) el.removeAttribute(attr.name);
  }
  root.removeAttribute("width");
  root.removeAttribute("height");
  root.setAttribute("shape-rendering", "crispEdges");
  root.setAttribute("aria-hidden", "true");
  root.setAttribute("focusable", "false");
  return /** @type {SVGSVGElement} */ (document.importNode(root, true));
}

const QR_MIN_PX = 220;

/**
 * The size to draw a QR at: a whole number of pixels per module, at least
 * QR_MIN_PX, so a screenshot of the popup decodes (scaling by a fraction gives
 * uneven modules that decoders trip over). The module count is the viewBox
 * width over the module size, the largest unit every coordinate is a multiple of.
 * @param {SVGSVGElement} svg
 */
function qrPixels(svg) {
  const width = Number((svg.getAttribute("viewBox") ?? "").trim().split(/[\s,]+/)[2]);
  /** @type {(a: number, b: number) => number} */
  const gcd = (a, b) => (b ? gcd(b, a % b) : a);
  let unit = 0;
  for (const path of svg.querySelectorAll("path")) {
    for (const n of path.getAttribute("d")?.match(/-?\d*\.?\d+/g) ?? []) {
      const v = Math.abs(Number(n));
      if (!Number.isInteger(v)) return QR_MIN_PX;
      unit = gcd(unit, v);
    }
  }
  const modules = unit ? width / unit : NaN;
  if (!Number.isInteger(modules) || modules < 21) return QR_MIN_PX;
  return modules * Math.ceil(QR_MIN_PX / modules);
}

/**
 * A server address without the scheme, for tight spaces.
 * @param {string} url
 */
function shortServer(url) {
  return url.replace(/^[a-z]+:\/\//i, "").replace(/\/$/, "");
}

export function renderUnlinked() {
  const snap = data.snap;
  if (!snap) return;
  const link = snap.link;
  const reason = snap.unlinkedReason;
  $("unlinked-reason").hidden = !reason;
  if (reason) $("unlinked-reason-text").textContent = reason;

  $("link-title").hidden = !!reason;
  const codeMode = !!link?.pairingCode;
  const key = link ? `${link.uri}|${link.pairingCode ?? ""}|${link.expiresMs}` : null;
  if (key !== ui.link.key) {
    ui.link = { key, seenMs: Date.now(), lifeMs: Math.max(1000, (link?.expiresMs ?? 0) - Date.now()) };
    const qr = $("qr");
    const node = link?.qrSvg ? qrNode(link.qrSvg) : null;
    qr.replaceChildren(...(node ? [node] : []));
    qr.classList.toggle("empty", !node);
    if (node) qr.style.setProperty("--qr-px", `${qrPixels(node)}px`);
  }
  $("qr-wrap").hidden = codeMode;
  $("code-wrap").hidden = !codeMode;
  $("pairing-code").textContent = link?.pairingCode ?? "";
  const match = link?.confirmation;
  $("pairing-match").hidden = !match;
  $("pairing-match").replaceChildren(...(match ? richLine("pairingMatch", h("strong", {}, match)) : []));
  $("with-code").hidden = codeMode;
  $("with-qr").hidden = !codeMode;

  /** @param {string} text */
  const cmd = (text) => h("code", {}, text);
  const device = snap.deviceName || t("thisBrowser");
  const code = link?.pairingCode ?? "XXXX-XXXX";
  const question = h("strong", {}, t("linkQuestion", device));
  // The phone opens the web app this server serves at its root.
  const web = /^https?:\/\//i.test(snap.server);
  const app = h(web ? "a" : "span", { href: web ? snap.server : null, target: "_blank", rel: "noopener", id: "web-app-link" }, shortServer(snap.server));
  const steps = codeMode
    ? [richLine("howToCode1", app, h("strong", {}, t("phonePathCode"))), richLine("howToCode2"), richLine("howToCode3", cmd(`tether link --code ${code}`))]
    : [richLine("howTo1", app, h("strong", {}, t("phonePath"))), richLine("howTo2", question), richLine("howTo3", cmd("tether link <screenshot.png>"))];
  $("how-to").replaceChildren(...steps.map((parts) => h("li", {}, h("span", {}, ...parts))));

  // The fingerprint comes formatted; its first two groups are enough to recognise it here.
  const fp = snap.serverFingerprint;
  const server = shortServer(snap.server);
  $("unlinked-server").textContent = fp ? t("serverWithKey", server, `${fp.split("-").slice(0, 2).join("-")}…`) : server;
  tickCountdown();
}

/**
 * Whether the link on screen can no longer be used: none, exhausted, or the last one ran out.
 * @param {LinkView | null} link
 * @returns {boolean}
 */
function linkDead(link) {
  if (!link || link.exhausted) return true;
  const last = link.total > 0 && link.index >= link.total - 1;
  return last && link.expiresMs <= Date.now();
}

/** Updates the QR's countdown; runs every second while the QR is shown. */
export function tickCountdown() {
  if (ui.screen !== "unlinked") return;
  const link = data.snap?.link ?? null;
  const dead = linkDead(link);
  const codeMode = !!link?.pairingCode;
  $("qr-wrap").classList.toggle("dead", dead);
  $("qr-expired").hidden = !dead || codeMode;
  $("code-wrap").classList.toggle("dead", dead);
  $("code-expired").hidden = !dead || !codeMode;
  const box = $("countdown");
  const text = $("countdown-text");
  const meter = $("countdown-bar");
  const track = /** @type {HTMLElement} */ (meter.parentElement);
  box.hidden = !link;
  if (dead || !link) {
    box.classList.add("over");
    box.classList.remove("low");
    track.classList.remove("low");
    text.textContent = t("codeExpired");
    meter.style.width = "0%";
    return;
  }
  box.classList.remove("over");
  const left = link.expiresMs - Date.now();
  const last = link.total > 0 && link.index >= link.total - 1;
  if (left <= 0) text.textContent = t("codeRefreshing");
  else text.textContent = t(last ? "codeExpiresIn" : "codeRefreshesIn", clock(left));
  const frac = Math.max(0, Math.min(1, left / ui.link.lifeMs));
  meter.style.width = `${(frac * 100).toFixed(1)}%`;
  const low = left < 6000;
  box.classList.toggle("low", low);
  track.classList.toggle("low", low);
}

/** "Linked to @handle: is this you?" */
export function renderConfirm() {
  const handle = `@${data.snap?.account?.handle ?? ""}`;
  $("confirm-title").textContent = t("confirmTitle", handle);
  $("confirm-body").textContent = t("confirmBody", handle);
}

export function wireLink() {
  $("confirm-yes").addEventListener("click", () => post({ kind: "confirmAccount", yes: true }));
  $("confirm-no").addEventListener("click", () => post({ kind: "confirmAccount", yes: false }));
  const fresh = () => post({ kind: "startLink", withCode: !!data.snap?.link?.pairingCode });
  $("new-code").addEventListener("click", fresh);
  $("new-code-2").addEventListener("click", fresh);
  $("with-code").addEventListener("click", () => post({ kind: "startLink", withCode: true }));
  $("with-qr").addEventListener("click", () => post({ kind: "startLink", withCode: false }));
  window.setInterval(tickCountdown, 1000);
}
